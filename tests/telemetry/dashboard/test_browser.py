"""The dashboard in a real headless Chromium: the index lists a running ecology run, its page
draws charts, and a chart gains points as the test writes generations into the run's streams.

Needs Debian's `chromium` and `chromium-driver` (`apt-get install -y chromium chromium-driver`;
.ci/run installs them). Without them the test skips locally and fails under CI. The screenshot
is kept in test-artifacts/ (git-ignored).
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import pytest
from dashboard_helpers import write_generation

from evolora.telemetry.dashboard.app import create_app

ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,2400",
]


def _browser_or_skip():
    tools = [("chromium", CHROMIUM), ("chromedriver", DRIVER)]
    missing = [name for name, path in tools if not path]
    if missing:
        reason = f"no {' or '.join(missing)}: apt-get install -y chromium chromium-driver"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser test, but there is {reason}")
        pytest.skip(reason)
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="evolora-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)
    return driver, profile


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def server(runs_root):
    """The dashboard served by uvicorn on 127.0.0.1 in a thread, for as long as the test runs."""
    import uvicorn

    port = _free_port()
    config = uvicorn.Config(create_app(runs_root), host="127.0.0.1", port=port, log_level="error")
    app_server = uvicorn.Server(config)
    thread = threading.Thread(target=app_server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not app_server.started:
        assert time.monotonic() < deadline, "the dashboard did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    app_server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def browser():
    driver, profile = _browser_or_skip()
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def _wait(condition, what: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
def test_a_chart_gains_points_while_the_run_writes(server, browser, ecology_run, runs_root):
    from selenium.webdriver.common.by import By

    browser.get(server + "/")
    link = _wait(lambda: browser.find_elements(By.CSS_SELECTOR, "a.run-link"), "the run list")
    assert link[0].text == ecology_run.path.name
    status = browser.find_element(By.CSS_SELECTOR, "[data-status]")
    assert status.get_attribute("data-status") == "running"

    link[0].click()
    points = "return document.getElementById('figure-energy')?.data?.[0]?.x?.length || 0"
    assert _wait(lambda: browser.execute_script(points) == 3, "the energy chart")
    for generation in (4, 5, 6):
        write_generation(ecology_run, generation)
    assert _wait(lambda: browser.execute_script(points) == 6, "new points on the chart")
    drawn = browser.find_elements(By.CSS_SELECTOR, "#figure-energy .scatterlayer .point")
    assert len(drawn) >= 6  # Plotly really drew the markers, not only received the data
    for figure in ("roi", "population", "species", "prices", "accuracy", "assimilation"):
        assert browser.find_elements(By.ID, f"figure-{figure}"), figure

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "dashboard-running-ecology-run.png"
    assert browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000

    ecology_run.close()
    shutil.rmtree(ecology_run.path)  # deleted while viewed: the page says so, the server lives
    gone = "return document.querySelector('#status .gone')?.textContent || ''"
    assert "deleted" in _wait(lambda: browser.execute_script(gone), "the deleted-run notice")
    browser.get(server + "/")
    assert _wait(
        lambda: "no run folders yet" in browser.find_element(By.ID, "runs").text, "empty list"
    )
