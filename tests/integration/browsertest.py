"""What the real-browser tests share: headless Debian Chromium driven by selenium through
/usr/bin/chromedriver (always quit), and a test page served from its own loopback port, so that
it is another origin than the gateway's."""
from __future__ import annotations

import shutil
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM = "/usr/bin/chromium"
BASE_ARGS = ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--no-proxy-server",
             "--disable-gpu", "--no-first-run", "--disable-extensions")


def start_chromium(*extra_args: str, script_timeout: float = 15.0) -> webdriver.Chrome:
    """A headless Chromium; `extra_args` after the base ones. The caller quits it."""
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not Path(path).exists() and shutil.which(Path(path).name) is None:
            pytest.fail(f"{path} is missing: apt-get install {package} (scripts/ensure-deps.sh test)", pytrace=False)
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in BASE_ARGS + extra_args:
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(15)
    driver.set_script_timeout(script_timeout)
    return driver


@contextmanager
def chromium(*extra_args: str) -> Iterator[webdriver.Chrome]:
    driver = start_chromium(*extra_args)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def browser():
    with chromium() as driver:
        yield driver


@contextmanager
def serve_page(page: bytes) -> Iterator[str]:
    """Serves `page` (HTML) at every path of a loopback port; yields the page's URL."""
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/page.html"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
