"""The Studio in a real JupyterLab, driven by headless Chromium through Playwright.

Starts JupyterLab on loopback (random port, random token, throw-away runtime/settings dirs),
opens `notebooks/studio.ipynb`, runs all cells, and then does what a learner does: pick the
`cpu` environment (the Dockerfile preview follows), see the three fields a learner changes first
with the other options folded by group, open Images and give another base image (the Dockerfile
follows), press Check (a findings table appears).
A widget that does not render, a cell that raises, or an "Error displaying widget" fails it.
The screenshot lands in `test-output/browser/studio.png`, JupyterLab's log beside it.

Needs Debian's Chromium (`tests/lab/browser.sh`) and Playwright's Python package; never
`playwright install`. Skips without them, fails instead under CI=true.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import OUTPUT, REPO, need
from servers import free_port, wait_until_answers

from kit.decide.options import PIXI_VERSION

CHROMIUM = Path("/usr/bin/chromium")
NOTEBOOKS = REPO / "notebooks"
NOTEBOOK = "studio.ipynb"
SHOTS = OUTPUT / "browser"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextmanager
def chromium_page(width: int, height: int) -> Iterator[Any]:
    """A page of the width and height given in Debian's headless Chromium, launched the one way
    the browser tests launch it (no sandbox, no GPU, nothing fetched in the background), and
    closed however the test ends."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser.new_page(viewport={"width": width, "height": height})
        finally:
            browser.close()


# User settings for the throw-away lab: no news toast or update check (no network, nothing over
# the studio in the screenshot), no autosave (the test never writes outputs
# into the repository's notebook), every cell attached to the DOM (no windowing surprises).
LAB_SETTINGS: dict[str, dict[str, Any]] = {
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
    "@jupyterlab/extensionmanager-extension/plugin": {"enabled": False},
}

# Seconds; generous but bounded. The whole test takes well under two minutes when it passes.
SERVER_START = 60
PAGE_LOAD = 60
KERNEL_START = 60
RUN_STARTED = 5
RUN_ALL = 60
STUDIO_RENDER = 60
PREVIEW_UPDATE = 30
CHECK_DONE = 60


@dataclass
class Lab:
    url: str
    token: str
    log: Path

    def page_url(self, path: str) -> str:
        return f"{self.url}{path}?token={self.token}"

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def ensure_kernelspec() -> None:
    """The notebook asks for kernelspec `python3`: make this interpreter provide it."""
    from jupyter_client.kernelspec import KernelSpecManager

    if "python3" not in KernelSpecManager().find_kernel_specs():
        subprocess.run(
            [sys.executable, "-m", "ipykernel", "install", "--sys-prefix", "--name", "python3"],
            check=True,
            capture_output=True,
            timeout=60,
        )


def write_settings(settings_dir: Path) -> None:
    for plugin, values in LAB_SETTINGS.items():
        path = settings_dir / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


def stop(process: subprocess.Popen[bytes], lab: Lab) -> None:
    """Ask the server to shut down (it stops its kernels), then end its process group."""
    if process.poll() is None:
        try:
            request = urllib.request.Request(lab.page_url("/api/shutdown"), method="POST")
            urllib.request.urlopen(request, timeout=5).close()
            process.wait(timeout=15)
        except (urllib.error.URLError, OSError, subprocess.TimeoutExpired):
            pass
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if process.poll() is not None:
            break
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture
def lab() -> Iterator[Lab]:
    """JupyterLab on 127.0.0.1 (random port and token), serving notebooks/; always shut down."""
    need(CHROMIUM.exists(), f"{CHROMIUM} is missing (run tests/lab/browser.sh)")
    need(
        importlib.util.find_spec("playwright") is not None,
        "Playwright's Python package is missing (pip install playwright; never `playwright install`)",
    )
    need(importlib.util.find_spec("jupyterlab") is not None, "jupyterlab is not installed (the lab extra)")
    ensure_kernelspec()
    SHOTS.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix="kit-browser-"))
    port, token = free_port(), secrets.token_hex(16)
    lab = Lab(f"http://127.0.0.1:{port}", token, SHOTS / "jupyterlab.log")
    write_settings(temp / "settings")
    (temp / "tmp").mkdir()
    env = dict(
        os.environ,
        JUPYTER_RUNTIME_DIR=str(temp / "runtime"),
        JUPYTER_CONFIG_DIR=str(temp / "config"),
        JUPYTER_DATA_DIR=str(temp / "data"),
        IPYTHONDIR=str(temp / "ipython"),
        JUPYTERLAB_SETTINGS_DIR=str(temp / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(temp / "workspaces"),
        TMPDIR=str(temp / "tmp"),  # the kernel's scratch copies go away with `temp`
        PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    )
    command = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        "--allow-root",
        f"--ServerApp.root_dir={NOTEBOOKS}",
        f"--LabApp.user_settings_dir={temp / 'settings'}",
        f"--LabApp.workspaces_dir={temp / 'workspaces'}",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.handlers.announcements.NeverCheckForUpdate",
    ]
    with lab.log.open("wb") as log:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        wait_until_answers(
            process, lab.page_url("/api/status"), SERVER_START, "JupyterLab", lab.log_tail, poll=0.3
        )
        yield lab
    finally:
        stop(process, lab)
        shutil.rmtree(temp, ignore_errors=True)


# ---------------------------------------------------------------------------------- the page

STUDIO = ".kit-studio"
ENV_SELECT = ".kit-studio .kit-env select"
PREVIEW_TABS = ".kit-studio .kit-preview .lm-TabBar-tab"
PREVIEW_FILES = ".kit-studio .kit-preview .kit-file"
CHECK = ".kit-studio button.kit-check"
FIRST_FIELDS = (".kit-studio .kit-env", ".kit-studio .kit-style", ".kit-studio .kit-engine")
FOLDED_FIELDS = (".kit-studio .kit-base-image", ".kit-studio .kit-registry", ".kit-studio .kit-job-cpus")
GROUP_HEADER = ".kit-studio .kit-form-groups .jupyter-widget-Collapse-header"
BASE_IMAGE_INPUT = ".kit-studio .kit-base-image input"
JAMMY = f"ghcr.io/prefix-dev/pixi:{PIXI_VERSION}-jammy"
FINDINGS = ".kit-studio .kit-findings"
KERNEL_IDLE = ".jp-NotebookPanel-toolbar .jp-Notebook-ExecutionIndicator[data-status='idle']"
KERNEL_DIALOG_ACCEPT = ".jp-Dialog .jp-Dialog-button.jp-mod-accept"
# What a failed cell or a widget that could not render leaves in the notebook. JupyterLab
# renders tracebacks as stderr; ipywidgets 8 draws a broken widget as its error widget (older
# ones wrote "Error displaying widget"); without a widget manager the widget's repr shows.
STDERR_OUTPUT = ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
WIDGET_ERROR = ".jp-OutputArea-output .jupyter-widgets-error-widget"
TEXT_OUTPUT = ".jp-OutputArea-output[data-mime-type='text/plain']"
WIDGET_AS_TEXT = re.compile(r"\s*[A-Z]\w*\((children|value|layout)=")
DONE_PROMPT = re.compile(r"\[\d+\]")  # a code cell's prompt once it has run
QUEUED_PROMPT = re.compile(r"\[\*\]")  # ... while it runs or waits to
WIDGET_ERROR_TEXT = "Error displaying widget"


def accept_kernel_dialog(page: Any) -> None:
    """A "Select Kernel" dialog (a fresh lab, a notebook without a kernel): take the default."""
    dialog = page.locator(KERNEL_DIALOG_ACCEPT)
    if dialog.count() and dialog.first.is_visible():
        dialog.first.click()


def notebook_errors(page: Any) -> str:
    """Tracebacks, widgets that failed to render, widgets shown as plain text; "" when none."""
    found = [t for t in page.locator(STDERR_OUTPUT).all_inner_texts() if "Traceback" in t]
    broken = page.locator(WIDGET_ERROR)
    for i in range(broken.count()):
        try:  # the error widget shows the JavaScript error once clicked
            broken.nth(i).click(timeout=2_000)
        except Exception:  # noqa: BLE001  (a diagnostic only)
            pass
        found.append(f"{WIDGET_ERROR_TEXT}: {broken.nth(i).inner_text()}")
    if page.get_by_text(WIDGET_ERROR_TEXT).count():
        found.append(page.get_by_text(WIDGET_ERROR_TEXT).first.inner_text())
    found += [
        f"a widget shown as text (no widget manager in the page?): {t.strip()[:300]}"
        for t in page.locator(TEXT_OUTPUT).all_inner_texts()
        if WIDGET_AS_TEXT.match(t)
    ]
    return "\n---\n".join(t.strip()[-1500:] for t in found if t.strip())


def wait_for_studio(page: Any, timeout: float) -> Any:
    """Wait for `.kit-studio` to be visible; fail at once on an error output or widget error."""
    studio = page.locator(STUDIO)
    deadline = time.monotonic() + timeout
    while True:
        accept_kernel_dialog(page)
        errors = notebook_errors(page)
        if errors:
            pytest.fail(f"the notebook shows an error instead of the studio:\n{errors}")
        if studio.count() and studio.first.is_visible():
            return studio.first
        if time.monotonic() > deadline:
            outputs = [t.strip()[:300] for t in page.locator(".jp-OutputArea-output").all_inner_texts()]
            pytest.fail(f"no visible {STUDIO} within {timeout:.0f} s after the cells ran; outputs: {outputs}")
        page.wait_for_timeout(500)


class KernelFrames:
    """Counts messages the page receives on kernel channel websockets.

    The toolbar says idle before the page has connected to its kernel; Run All in that moment
    can start a second kernel and lose cells. A message from the kernel means it is connected.
    """

    def __init__(self, page: Any) -> None:
        self.count = 0
        page.on("websocket", self._opened)

    def _opened(self, socket: Any) -> None:
        if "/api/kernels/" in socket.url and "/channels" in socket.url:
            socket.on("framereceived", self._received)

    def _received(self, _payload: Any) -> None:
        self.count += 1


def wait_for_kernel(page: Any, frames: KernelFrames, timeout: float) -> None:
    """Wait until the page is connected to an idle kernel."""
    idle = page.locator(KERNEL_IDLE)
    deadline = time.monotonic() + timeout
    while not (frames.count and idle.count() and idle.first.is_visible()):
        accept_kernel_dialog(page)
        if time.monotonic() > deadline:
            status = page.locator(".jp-NotebookPanel-toolbar .jp-Notebook-ExecutionIndicator")
            state = status.first.get_attribute("data-status") if status.count() else "(no indicator)"
            pytest.fail(
                f"no idle, connected kernel within {timeout:.0f} s (status: {state}, "
                f"{frames.count} kernel messages)"
            )
        page.wait_for_timeout(250)


def close_left_sidebar(page: Any) -> None:
    """Fold the file browser away: the notebook (and the studio's preview) get its width."""
    current = page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current")
    if current.count():
        current.first.click()


def run_all_cells(page: Any, attempts: int = 3) -> int:
    """Run > Run All Cells, through the menu bar as a learner would; the attempts it took.

    Should JupyterLab still drop cells (their prompts stay `[ ]` with nothing queued, `[*]`),
    the menu is used again; the notebook's cells may run twice, which they allow.
    """
    prompts = page.locator(".jp-Notebook .jp-CodeCell .jp-InputPrompt")
    for attempt in range(1, attempts + 1):
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).first.click()
        page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).first.click()
        clicked = time.monotonic()
        while time.monotonic() < clicked + RUN_ALL:
            page.wait_for_timeout(250)
            accept_kernel_dialog(page)
            errors = notebook_errors(page)
            if errors:
                pytest.fail(f"the notebook shows an error:\n{errors}")
            texts = prompts.all_inner_texts()
            if texts and all(DONE_PROMPT.search(t) for t in texts):
                return attempt
            if not any(QUEUED_PROMPT.search(t) for t in texts) and time.monotonic() > clicked + RUN_STARTED:
                break  # nothing running or queued, yet not every cell ran: dropped
    pytest.fail(
        f"Run All Cells did not run every code cell in {attempts} attempts; prompts: "
        f"{[t.strip() for t in prompts.all_inner_texts()]}"
    )


def show_preview(page: Any, suffix: str) -> Any:
    """Select the preview tab whose title ends with `suffix`; the locator of its (visible) body."""
    tabs = page.locator(PREVIEW_TABS)
    titles = [t.strip() for t in tabs.all_inner_texts()]
    matches = [i for i, t in enumerate(titles) if t.endswith(suffix)]
    assert matches, f"no preview tab ending with {suffix!r}; tabs: {titles}"
    tabs.nth(matches[0]).click()
    body = page.locator(PREVIEW_FILES).nth(matches[0])
    body.wait_for(state="visible", timeout=10_000)
    return body


def drive_studio(page: Any, lab: Lab) -> dict[str, Any]:
    """Open the notebook, run it, change the environment, check; return what was seen."""
    seen: dict[str, Any] = {}
    started = time.monotonic()
    frames = KernelFrames(page)
    page.goto(lab.page_url(f"/lab/tree/{NOTEBOOK}"), wait_until="domcontentloaded", timeout=PAGE_LOAD * 1000)
    page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell").first.wait_for(
        state="visible", timeout=PAGE_LOAD * 1000
    )
    wait_for_kernel(page, frames, KERNEL_START)
    close_left_sidebar(page)
    seen["notebook_open_s"] = round(time.monotonic() - started, 1)

    seen["run_all_attempts"] = run_all_cells(page)
    wait_for_studio(page, STUDIO_RENDER)
    seen["studio_visible_s"] = round(time.monotonic() - started, 1)

    select = page.locator(ENV_SELECT)
    assert select.count() == 1, f"expected one environment dropdown ({ENV_SELECT}), found {select.count()}"
    seen["environments"] = [o.strip() for o in select.locator("option").all_inner_texts()]
    seen["environment_before"] = select.evaluate("s => s.options[s.selectedIndex].text")
    assert {"cpu", "gpu"} <= set(seen["environments"]), seen
    assert seen["environment_before"] == "gpu", seen

    dockerfile = show_preview(page, "Dockerfile")
    from playwright.sync_api import expect

    expect(dockerfile).to_contain_text('ENVIRONMENT="gpu"', timeout=PREVIEW_UPDATE * 1000)
    select.select_option(label="cpu")
    expect(dockerfile).to_contain_text('ENVIRONMENT="cpu"', timeout=PREVIEW_UPDATE * 1000)
    expect(dockerfile).not_to_contain_text('ENVIRONMENT="gpu"')
    seen["preview_updated_s"] = round(time.monotonic() - started, 1)

    # What a learner changes first is in view; every other option is folded away by its group.
    seen["first_fields_visible"] = [page.locator(f).first.is_visible() for f in FIRST_FIELDS]
    seen["folded_fields_visible"] = [page.locator(f).first.is_visible() for f in FOLDED_FIELDS]
    assert (seen["first_fields_visible"], seen["folded_fields_visible"]) == ([True] * 3, [False] * 3), seen
    seen["group_titles"] = [t.strip() for t in page.locator(GROUP_HEADER).all_inner_texts()]
    assert seen["group_titles"] == ["Images", "Publishing"], seen
    # A value set in a folded group reaches the files: open Images, give another base image.
    page.locator(GROUP_HEADER, has_text="Images").first.click()
    base_image = page.locator(BASE_IMAGE_INPUT).first
    expect(base_image).to_be_visible(timeout=PREVIEW_UPDATE * 1000)
    base_image.fill(JAMMY)
    expect(dockerfile).to_contain_text(f"FROM {JAMMY} AS build", timeout=PREVIEW_UPDATE * 1000)
    seen["folded_value_reached_files_s"] = round(time.monotonic() - started, 1)

    button = page.locator(CHECK)
    expect(button).to_be_enabled(timeout=PREVIEW_UPDATE * 1000)
    button.click()
    result = page.locator(f"{FINDINGS} table, {FINDINGS} .kit-findings-none").first
    result.wait_for(state="visible", timeout=CHECK_DONE * 1000)
    seen["findings_rows"] = page.locator(f"{FINDINGS} tbody tr").count()
    seen["findings_s"] = round(time.monotonic() - started, 1)
    errors = notebook_errors(page)
    assert not errors, f"the notebook shows errors after Check:\n{errors}"
    return seen


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.timeout(240)
def test_studio_in_jupyterlab(lab: Lab) -> None:
    assert (NOTEBOOKS / NOTEBOOK).is_file(), f"{NOTEBOOKS / NOTEBOOK} is missing"
    shot = SHOTS / "studio.png"
    shot.unlink(missing_ok=True)
    with chromium_page(1400, 2400) as page:
        try:
            seen = drive_studio(page, lab)
        except BaseException:
            try:
                page.screenshot(path=str(SHOTS / "failure.png"))
                print(f"screenshot: {SHOTS / 'failure.png'}")
            finally:
                print(f"JupyterLab log:\n{lab.log_tail()}")
            raise
        studio = page.locator(STUDIO).first
        studio.evaluate("e => e.scrollIntoView({block: 'start'})")  # its top below the toolbar
        studio.screenshot(path=str(shot))
        page.screenshot(path=str(SHOTS / "lab.png"))
    print(json.dumps(seen))
    assert shot.stat().st_size > 10_000, "the screenshot is suspiciously small"
    # Autosave is off and nothing presses Save: the repository's notebook must stay as it was.
    saves = [line for line in lab.log.read_text(errors="replace").splitlines() if "Saving file at" in line]
    assert not saves, f"JupyterLab saved a file during the test: {saves}"
