"""`alexnet demo` in a real browser: the command started as a subprocess on a free port, headless
Chromium (Debian's chromium and chromium-driver, driven by selenium) uploading a real ImageNet
photograph. The page's top-1 must be `alexnet predict --json`'s for that photo and net; a broken
upload must give an error in the page while the server keeps serving; and the page must fetch
nothing from outside this machine (every request the browser made is read from its log).
.ci/run installs the browser; elsewhere the test skips, saying what is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SAMPLE = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "imagenet-sample"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
LABEL = "[data-testid='label-output-value']"  # gr.Label's headline: the top-1 class

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (the test extra has it)")
pytest.importorskip("gradio", reason="gradio is not installed (pip install -e '.[demo]')")
pytestmark = [
    pytest.mark.skipif(not (Path(CHROMIUM).exists() and Path(DRIVER).exists()),
                       reason="no headless browser: apt-get install chromium chromium-driver (.ci/run does)"),
    pytest.mark.skipif(not SAMPLE.is_dir(), reason=f"{SAMPLE} is absent"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def run_dir(trained_shapes: dict) -> str:
    return str(Path(trained_shapes["path"]).parent)


@pytest.fixture(scope="module")
def server(run_dir: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    log = tmp_path_factory.mktemp("demo") / "demo.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "alexnet", "demo", "--checkpoint", run_dir, "--port", str(port)],
                                stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(240):
            if proc.poll() is not None:
                pytest.fail(f"alexnet demo exited with {proc.returncode}: {log.read_text()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail(f"alexnet demo did not answer in 120 s: {log.read_text()}")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert "Traceback" not in log.read_text(), log.read_text()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1800"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


def _upload(driver: Any, url: str, path: Path) -> str:
    """Open the page, upload `path`, and return the top-1 text or the error the page shows."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "input[type=file]"))
    driver.find_element(By.CSS_SELECTOR, "input[type=file]").send_keys(str(path.resolve()))

    def answer(d: Any) -> str | None:
        for css in (LABEL, ".toast-body"):
            text = " ".join(e.text for e in d.find_elements(By.CSS_SELECTOR, css)).strip()
            if text:
                return f"error: {text}" if css != LABEL else text
        return None

    return WebDriverWait(driver, 120).until(answer)


def _classify_without_a_photo(driver: Any, url: str) -> str:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    button = WebDriverWait(driver, 60).until(
        lambda d: next((b for b in d.find_elements(By.TAG_NAME, "button") if b.text.strip() == "Classify"), None))
    button.click()
    return WebDriverWait(driver, 60).until(
        lambda d: "error: " + " ".join(e.text for e in d.find_elements(By.CSS_SELECTOR, ".toast-body")).strip()
        if any(e.text.strip() for e in d.find_elements(By.CSS_SELECTOR, ".toast-body")) else None)


def _hosts(driver: Any) -> set[str]:
    """The host of every http(s) request the browser made since the last call."""
    hosts = set()
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            url = message["params"]["request"]["url"]
            if url.startswith(("http://", "https://", "ws://", "wss://")):
                hosts.add(url.split("/")[2].rsplit(":", 1)[0])
    return hosts


def test_the_page_says_what_predict_says_survives_bad_uploads_and_stays_offline(
        server: str, browser: Any, run_dir: str, tmp_path: Path) -> None:
    photo = next((SAMPLE / "n02099601").glob("*.JPEG"))  # a golden retriever
    predicted = subprocess.run([sys.executable, "-m", "alexnet", "predict", str(photo), "--checkpoint", run_dir,
                                "--json"], capture_output=True, text=True, check=True)
    top1 = json.loads(predicted.stdout)["topk"][0]["class"]

    assert "upload a photo first" in _classify_without_a_photo(browser, server)
    assert _upload(browser, server, photo) == top1
    assert _hosts(browser) == {"127.0.0.1"}, "the page fetched something from outside this machine"
    shares = [b for b in browser.find_elements("css selector", "button") if b.get_attribute("aria-label") == "Share"]
    assert not shares, "a Share button posts to Hugging Face Spaces: the page is offline"

    broken = tmp_path / "broken.jpg"
    broken.write_bytes(photo.read_bytes()[:2000])  # a JPEG cut short
    shown = _upload(browser, server, broken)
    assert shown.startswith("error:") and "broken.jpg" in shown, shown

    huge = tmp_path / "huge.png"
    huge.write_bytes(os.urandom(21 * 2**20))  # over the page's 20 MB
    shown = _upload(browser, server, huge)
    assert shown.startswith("error:") and "exceed" in shown and "huge.png" in shown, shown

    with urllib.request.urlopen(server, timeout=10) as response:  # the server still answers
        assert response.status == 200
    assert _upload(browser, server, photo) == top1
