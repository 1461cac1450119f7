"""The lesson site preview (`kit lesson preview`, pandoc): every page, callouts visible, solutions
collapsed, links between pages working, and a screenshot of one episode in headless Chromium
(`test-output/site/02-docker.png`)."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import OUTPUT, REPO, need

KIT = Path(sys.executable).parent / "kit"
SHOTS = OUTPUT / "site"
CHROMIUM = Path("/usr/bin/chromium")


def preview(out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(KIT), "lesson", "preview", "--root", str(REPO), "--out", str(out), *extra],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    need(shutil.which("pandoc") is not None, "pandoc is missing (run tests/lab/hub.sh)")
    out = tmp_path_factory.mktemp("site")
    done = preview(out)
    assert done.returncode == 0, done.stderr
    return out


@pytest.mark.site
def test_every_listed_page_is_rendered(site: Path) -> None:
    import yaml

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    expected = {"index.html", "kit-preview.css"}
    for section in ("episodes", "learners", "instructors"):
        expected |= {name[:-3] + ".html" for name in config.get(section) or []}
    assert expected <= {p.name for p in site.iterdir()}
    assert not [p.name for p in site.iterdir() if p.name.startswith(".")], "scratch files left behind"


@pytest.mark.site
def test_callouts_solutions_and_links(site: Path) -> None:
    page = (site / "02-docker.html").read_text()
    assert 'href="kit-preview.css"' in page
    assert re.search(r'<div class="challenge callout-box">', page), "challenges are not marked"
    assert re.search(r'<div class="objectives callout-box">', page)
    assert '<details class="solution"><summary>' in page, "solutions are not collapsed"
    assert ":::" not in page, "a fenced div was not understood"
    local = set(re.findall(r'href="([^":#]+\.html)', page))
    assert local and all((site / target).is_file() for target in local), local
    assert 'class="current"' in page


@pytest.mark.site
def test_bad_output_folder_is_refused(tmp_path: Path) -> None:
    need(shutil.which("pandoc") is not None, "pandoc is missing (run tests/lab/hub.sh)")
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    done = preview(tmp_path / "link" / "site")
    assert done.returncode == 2 and "[--out]" in done.stderr and "fix:" in done.stderr, done.stderr
    assert not (real / "site").exists()
    (tmp_path / "file").write_text("x")
    done = preview(tmp_path / "file")
    assert done.returncode == 2 and "not a folder" in done.stderr


@pytest.mark.site
@pytest.mark.browser
@pytest.mark.timeout(180)
def test_episode_screenshot(site: Path) -> None:
    need(CHROMIUM.exists(), f"{CHROMIUM} is missing (run tests/lab/browser.sh)")
    need(importlib.util.find_spec("playwright") is not None, "Playwright's Python package is missing")
    from test_browser import chromium_page

    SHOTS.mkdir(parents=True, exist_ok=True)
    shot = SHOTS / "02-docker.png"
    shot.unlink(missing_ok=True)
    with chromium_page(1100, 1400) as page:
        page.goto((site / "02-docker.html").as_uri())
        challenge = page.locator("div.challenge").first
        challenge.wait_for(state="visible", timeout=10_000)
        # the stylesheet applies: a challenge has its coloured left border
        border = challenge.evaluate("e => getComputedStyle(e).borderLeftWidth")
        assert border == "6px", border
        solution = page.locator("details.solution").first
        assert solution.evaluate("e => e.open") is False
        solution.locator("summary").click()
        assert solution.evaluate("e => e.open") is True
        solution.scroll_into_view_if_needed()
        page.screenshot(path=str(shot), full_page=False)
    assert shot.stat().st_size > 20_000
