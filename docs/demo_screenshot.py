"""The README's picture of `alexnet demo`: the page as headless Chromium shows it after a photo upload.

    .venv/bin/python docs/demo_screenshot.py RUN PHOTO docs/pictures/demo.png [--examples DIR]

Starts `alexnet demo --checkpoint RUN` on a free port, opens it in Debian's chromium (driven by
selenium, as tests/demo/test_browser.py does), uploads PHOTO, waits for the top-5 and both maps,
and saves the window. Needs the test extra and `apt-get install chromium chromium-driver`.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run")
    p.add_argument("photo")
    p.add_argument("out")
    p.add_argument("--examples", default=None)
    args = p.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    extra = ["--examples", args.examples] if args.examples else []
    server = subprocess.Popen([sys.executable, "-m", "alexnet", "demo", "--checkpoint", args.run, "--port", str(port),
                               *extra])
    url = f"http://127.0.0.1:{port}/"
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1300,1150",
                "--hide-scrollbars"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(url, timeout=2).close()
                break
            except OSError:
                time.sleep(0.5)
        driver.get(url)
        WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "input[type=file]"))
        driver.find_element(By.CSS_SELECTOR, "input[type=file]").send_keys(args.photo)
        WebDriverWait(driver, 120).until(
            lambda d: len(d.find_elements(By.CSS_SELECTOR, "img[alt]")) >= 3
            and d.find_elements(By.CSS_SELECTOR, "[data-testid='label-output-value']"))
        time.sleep(3)  # the maps' images finish loading
        driver.save_screenshot(args.out)
        print(f"wrote {args.out}")
    finally:
        driver.quit()
        server.terminate()
        server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
