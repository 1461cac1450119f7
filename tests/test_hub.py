"""JupyterHub: the instructor's nbgitpuller link, and a real hub that follows it.

The unit tests check `kit lesson link` (what it prints, what it refuses, exit codes). The
`jupyterhub` test starts a real JupyterHub on loopback: configurable-http-proxy from npm
(tests/lab/hub.sh), the DummyAuthenticator with one test user and a password, and
SimpleLocalProcessSpawner (single-user servers as local processes, homes under a temporary
folder). The lesson is a local git repository (this checkout, committed under tmp) served as a
file:// URL. Headless Chromium logs in, opens the link `kit lesson link` printed, nbgitpuller
clones the lesson into the user's home, JupyterLab opens `notebooks/studio.ipynb`, and the test
runs its cells until the studio renders. Screenshot and hub log: `test-output/hub/`.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import OUTPUT, REPO, need
from episode_blocks import copy_checkout
from servers import free_port, stop_group, wait_until_answers

CHP = (
    Path(os.environ.get("KIT_LAB_CACHE", "/var/cache/kit-lab"))
    / "hub"
    / "node_modules"
    / ".bin"
    / "configurable-http-proxy"
)
KIT = Path(sys.executable).parent / "kit"
SHOTS = OUTPUT / "hub"
USER = "learner"
LESSON_FOLDER = "pixi-deploy-kit"  # the repository's folder name; nbgitpuller clones into it
HUB_START = 90
PULL_AND_OPEN = 120


def kit_link(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(KIT), "lesson", "link", *args], capture_output=True, text=True, timeout=60)


# --------------------------------------------------------------------------- the link builder


def test_link_carries_repo_branch_and_the_notebook_path() -> None:
    done = kit_link(
        "--hub",
        "https://hub.example.org/",
        "--repo",
        "https://github.com/owner/lesson",
        "--branch",
        "gh-pages",
    )
    assert done.returncode == 0, done.stderr
    link = done.stdout.strip()
    parts = urlsplit(link)
    assert (parts.scheme, parts.netloc, parts.path) == (
        "https",
        "hub.example.org",
        "/hub/user-redirect/git-pull",
    )
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert query == {
        "repo": "https://github.com/owner/lesson",
        "branch": "gh-pages",
        "urlpath": "lab/tree/lesson/notebooks/studio.ipynb",
    }


def test_link_defaults_and_json() -> None:
    done = kit_link(
        "--hub",
        "https://hub.example.org/jupyter",
        "--repo",
        "https://github.com/o/r.git",
        "--path",
        "notebooks/02-docker.ipynb",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    link = json.loads(done.stdout)["result"]["link"]
    assert link.startswith("https://hub.example.org/jupyter/hub/user-redirect/git-pull?")
    query = {k: v[0] for k, v in parse_qs(urlsplit(link).query).items()}
    assert "branch" not in query  # the repository's default branch
    assert query["urlpath"] == "lab/tree/r.git/notebooks/02-docker.ipynb"  # nbgitpuller keeps ".git"


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--repo", "https://github.com/o/r"], "--hub"),
        (["--hub", "hub.example.org", "--repo", "https://github.com/o/r"], "--hub"),
        (["--hub", "https://h.org/?x=1", "--repo", "https://github.com/o/r"], "--hub"),
        (["--hub", "https://h.org", "--repo", "git@github.com:o/r.git"], "--repo"),
        (["--hub", "https://h.org", "--repo", "https://user:secret@github.com/o/r"], "--repo"),
        (["--hub", "https://h.org", "--repo", "file://relative/path"], "--repo"),
        (["--hub", "https://h.org", "--repo", "https://github.com/o/r", "--branch", "a..b"], "--branch"),
        (["--hub", "https://h.org", "--repo", "https://github.com/o/r", "--branch=-rf"], "--branch"),
        (["--hub", "https://h.org", "--repo", "https://github.com/o/r", "--branch", "x.lock"], "--branch"),
        (["--hub", "https://h.org", "--repo", "https://github.com/o/r", "--branch", "a b"], "--branch"),
        (["--hub", "https://h.org", "--repo", "https://github.com/o/r", "--path", "../etc/passwd"], "--path"),
        (["--hub", "https://h.org", "--repo", "https://github.com/o/r", "--path", "/abs.ipynb"], "--path"),
    ],
)
def test_bad_link_input_exits_2_with_field_and_fix(args: list[str], field: str) -> None:
    done = kit_link(*args)
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and f"[{field}]" in lines[0] and "(fix: " in lines[0], lines
    assert "Traceback" not in done.stderr


# ---------------------------------------------------------------------------------- the hub


@dataclass
class Hub:
    url: str
    password: str
    log: Path
    home: Path

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def hub_config(temp: Path, port: int, api_port: int, hub_port: int, password: str) -> str:
    from test_browser import write_settings

    settings = temp / "lab-settings"
    write_settings(settings)
    bin_dir = Path(sys.executable).parent
    env = {
        "PATH": os.pathsep.join([str(bin_dir), "/usr/bin", "/bin"]),
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "JUPYTERLAB_WORKSPACES_DIR": str(temp / "workspaces"),
        "JUPYTER_RUNTIME_DIR": str(temp / "runtime"),
        "IPYTHONDIR": str(temp / "ipython"),
        "TMPDIR": str(temp / "tmp"),
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    return f"""
c = get_config()  # noqa
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{api_port}"
c.ConfigurableHTTPProxy.command = [{str(CHP)!r}]
c.ConfigurableHTTPProxy.should_start = True
c.JupyterHub.db_url = "sqlite:///{temp / "jupyterhub.sqlite"}"
c.JupyterHub.cookie_secret_file = {str(temp / "cookie_secret")!r}
c.JupyterHub.pid_file = {str(temp / "jupyterhub.pid")!r}
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = {password!r}
c.Authenticator.allowed_users = {{{USER!r}}}
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = {str(temp / "home" / "{username}")!r}
c.Spawner.cmd = [{str(bin_dir / "jupyterhub-singleuser")!r}]
c.Spawner.args = ["--allow-root", "--LabApp.news_url=None",
                  "--LabApp.check_for_updates_class=jupyterlab.handlers.announcements.NeverCheckForUpdate"]
c.Spawner.default_url = "/lab"
c.Spawner.environment = {env!r}
c.Spawner.start_timeout = 90
c.Spawner.http_timeout = 90
c.JupyterHub.cleanup_servers = True
"""


@pytest.fixture
def hub() -> Iterator[Hub]:
    need(CHP.exists(), f"{CHP} is missing (run tests/lab/hub.sh)")
    need(Path("/usr/bin/chromium").exists(), "/usr/bin/chromium is missing (run tests/lab/browser.sh)")
    for module in ("jupyterhub", "nbgitpuller", "playwright"):
        need(importlib.util.find_spec(module) is not None, f"{module} is not installed (the test extra)")
    from test_browser import ensure_kernelspec

    ensure_kernelspec()
    SHOTS.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix="kit-hub-"))
    for sub in ("home", "tmp", "runtime"):
        (temp / sub).mkdir()
    port, api_port, hub_port = free_port(), free_port(), free_port()
    password = secrets.token_hex(12)
    (temp / "jupyterhub_config.py").write_text(hub_config(temp, port, api_port, hub_port, password))
    hub = Hub(f"http://127.0.0.1:{port}", password, SHOTS / "jupyterhub.log", temp / "home" / USER)
    env = dict(
        os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    )
    with hub.log.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(temp / "jupyterhub_config.py")],
            cwd=temp,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        wait_until_answers(process, f"{hub.url}/hub/api", HUB_START, "JupyterHub", hub.log_tail)
        yield hub
    finally:
        stop_group(process, wait=20)  # SIGTERM lets the hub stop its proxy and servers first
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture
def lesson_repository(tmp_path: Path) -> Path:
    """This checkout as a git repository under tmp, the way the hub would see the lesson's."""
    repo = tmp_path / LESSON_FOLDER
    copy_checkout(REPO, repo)
    env = dict(
        os.environ,
        GIT_CONFIG_NOSYSTEM="1",
        GIT_AUTHOR_NAME="Instructor",
        GIT_AUTHOR_EMAIL="i@example.org",
        GIT_COMMITTER_NAME="Instructor",
        GIT_COMMITTER_EMAIL="i@example.org",
    )
    for args in (["init", "-q", "-b", "workshop"], ["add", "-A"], ["commit", "-qm", "The lesson"]):
        subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, timeout=120)
    return repo


@pytest.mark.jupyterhub
@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.timeout(420)
def test_hub_pulls_the_lesson_and_opens_the_studio(hub: Hub, lesson_repository: Path) -> None:
    from test_browser import (
        STUDIO_RENDER,
        KernelFrames,
        chromium_page,
        close_left_sidebar,
        run_all_cells,
        wait_for_kernel,
        wait_for_studio,
    )

    done = kit_link("--hub", hub.url, "--repo", lesson_repository.as_uri(), "--branch", "workshop")
    assert done.returncode == 0, done.stderr
    link = done.stdout.strip()
    target = f"/user/{USER}/lab/tree/{LESSON_FOLDER}/notebooks/studio.ipynb"
    shot = SHOTS / "studio-on-hub.png"
    shot.unlink(missing_ok=True)
    with chromium_page(1400, 2000) as page:
        frames = KernelFrames(page)
        try:
            page.goto(link, wait_until="domcontentloaded", timeout=60_000)
            page.locator("input[name=username]").fill(USER)
            page.locator("input[name=password]").fill(hub.password)
            page.locator("input[type=submit], button[type=submit]").first.click()
            page.wait_for_url(f"**{target}", timeout=PULL_AND_OPEN * 1000)
            page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell").first.wait_for(
                state="visible", timeout=PULL_AND_OPEN * 1000
            )
            wait_for_kernel(page, frames, 90)
            close_left_sidebar(page)
            run_all_cells(page)
            wait_for_studio(page, STUDIO_RENDER)
        except BaseException:
            page.screenshot(path=str(SHOTS / "failure.png"))
            print(f"screenshot: {SHOTS / 'failure.png'}\nhub log:\n{hub.log_tail()}")
            raise
        page.locator(".kit-studio").first.screenshot(path=str(shot))
    pulled = hub.home / LESSON_FOLDER
    assert (pulled / "notebooks" / "studio.ipynb").is_file(), "nbgitpuller did not clone the lesson"
    head = subprocess.run(
        ["git", "-C", str(pulled), "rev-parse", "--abbrev-ref", "HEAD"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert head.stdout.strip() == "workshop"
    assert shot.stat().st_size > 10_000
