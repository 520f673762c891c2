"""Headless Chromium for the report page's browser tests and its benchmark: the operating system's Chromium
(Debian: ``apt-get install chromium chromium-driver``) driven by Selenium through the matching chromedriver.
Nothing is downloaded: Selenium is given the driver's path, so its driver manager never runs.

Chromium starts with a fresh profile in a temporary folder and with its background services off
(``FLAGS``): the machines that run the tests have no network, and without these flags Chromium fills its log
with refused connections.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage")
INSTALL = ("headless Chromium is not installed: apt-get install -y chromium chromium-driver (Debian packages), "
           "then pip install selenium (bash scripts/install.sh installs the test extras); or set BENCH_CHROMIUM "
           "and BENCH_CHROMEDRIVER to a Chromium and its chromedriver")


def chromium_paths() -> tuple[str, str] | None:
    """(browser, driver) when both executables and the selenium package are there, else None."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return None
    browser = os.environ.get("BENCH_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    driver = os.environ.get("BENCH_CHROMEDRIVER") or shutil.which("chromedriver")
    if not (browser and driver and os.access(browser, os.X_OK) and os.access(driver, os.X_OK)):
        return None
    return browser, driver


@contextmanager
def headless_chromium(width: int = 1400, height: int = 1000):
    """A Selenium WebDriver on headless Chromium (console messages kept for :func:`console_errors`); quit and its
    profile folder removed on exit. RuntimeError with :data:`INSTALL` when Chromium is missing."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    paths = chromium_paths()
    if paths is None:
        raise RuntimeError(INSTALL)
    profile = tempfile.mkdtemp(prefix="bench-chromium-")
    options = webdriver.ChromeOptions()
    for flag in (*FLAGS, f"--window-size={width},{height}", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.binary_location = paths[0]
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(paths[1]), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def open_page(driver, path: Path, timeout: float = 60.0) -> dict:
    """Open ``path`` (file://), wait until the page says it is ready (``window.benchPage.ready``: tables
    interactive) and its load event has ended, and return its timings in ms from navigation start: ``load``
    (the load event's end), ``ready``, ``dom_interactive``. TimeoutError when it is not ready within
    ``timeout`` seconds."""
    driver.get(Path(path).resolve().as_uri())
    deadline = time.monotonic() + timeout
    ready = ("return !!(window.benchPage && window.benchPage.ready) "
             "&& performance.getEntriesByType('navigation')[0].loadEventEnd > 0")
    while not driver.execute_script(ready):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} was not ready after {timeout:.0f} s; console: {console_errors(driver)}")
        time.sleep(0.02)
    return driver.execute_script(
        "const n = performance.getEntriesByType('navigation')[0];"
        "return {load: n.loadEventEnd, ready: window.benchPage.readyMs, dom_interactive: n.domInteractive};")


def console_errors(driver) -> list[str]:
    """The console messages of level SEVERE since the last call (errors, failed loads)."""
    return [entry["message"] for entry in driver.get_log("browser") if entry.get("level") == "SEVERE"]
