"""Headless Chromium for the tests (Debian's ``chromium`` and ``chromium-driver`` through
selenium), with the flags that work on the CI machines and in containers as root.

:func:`unavailable` skips a test, saying why, or fails it where the browser tests are required
(``REQUIRE_BROWSER=1``, ``REQUIRE_SYSTEM_PACKAGES=1``: see :mod:`tests.support.system`, which
also finds the binaries); :func:`chromium` yields a started driver that keeps the browser's
console log and quits it, and removes its profile, at the end.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator

import pytest

from tests.support import system

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--disable-dev-shm-usage", "--window-size=1280,1600")


def unavailable(reason: str):
    """Skip, or fail where the browser tests are required (CI must not silently skip them)."""
    if system.required(system.BY_MARKER["browser"]):
        pytest.fail(f"the browser tests are required here but {reason}")
    pytest.skip(reason)


@contextlib.contextmanager
def chromium() -> Iterator:
    """A headless Chromium driven by selenium (see the module docstring)."""
    binary, driver = system.chromium(), system.chromedriver()
    if binary is None or driver is None:
        unavailable("chromium or chromedriver is not installed "
                    "(apt-get install chromium chromium-driver)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        unavailable("selenium is not installed")
    profile = tempfile.mkdtemp(prefix="test-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(service=Service(driver), options=options)
    browser.set_page_load_timeout(60)
    browser.set_script_timeout(60)
    try:
        yield browser
    finally:
        browser.quit()
        shutil.rmtree(profile, ignore_errors=True)
