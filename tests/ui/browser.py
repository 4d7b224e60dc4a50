"""Headless Debian Chromium through selenium, kept off every network but 127.0.0.1."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT = 30.0


def chromium_options(profile: Path) -> Any:
    from selenium.webdriver.chrome.options import Options

    options = Options()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--no-first-run",
                 "--disable-sync", "--disable-quic", f"--user-data-dir={profile}", "--window-size=1400,1000",
                 # Belt and braces: no name resolves except the loopback address the test uses.
                 "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"):
        options.add_argument(flag)
    return options


@contextlib.contextmanager
def chromium(profile: Path) -> Iterator[Any]:
    """A headless Chromium driven by the Debian chromedriver (no Selenium Manager, no downloads)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=chromium_options(profile))
    try:
        driver.set_page_load_timeout(60)
        yield driver
    finally:
        driver.quit()


class Page:
    """Small explicit-wait helpers around one driver, with screenshots into ``artifacts``."""

    def __init__(self, driver: Any, artifacts: Path, timeout: float = WAIT):
        self.driver = driver
        self.artifacts = artifacts
        self.timeout = timeout
        artifacts.mkdir(parents=True, exist_ok=True)

    def until(self, condition: Callable[[Any], Any], timeout: float | None = None, message: str = "") -> Any:
        """Poll ``condition`` until it returns something truthy; elements that React replaced
        meanwhile (stale) or that something covers for a moment just mean "not yet"."""
        from selenium.common.exceptions import ElementClickInterceptedException, StaleElementReferenceException
        from selenium.webdriver.support.ui import WebDriverWait

        wait = WebDriverWait(self.driver, timeout or self.timeout, poll_frequency=0.25,
                             ignored_exceptions=(StaleElementReferenceException, ElementClickInterceptedException))
        return wait.until(condition, message)

    def find(self, css: str, timeout: float | None = None) -> Any:
        """The first visible element matching ``css``."""
        return self.until(lambda d: next((e for e in d.find_elements("css selector", css) if e.is_displayed()),
                                         False), timeout, f"no visible {css!r}")

    def clickable(self, xpath: str, timeout: float | None = None) -> Any:
        """The first visible, enabled element matching ``xpath``."""
        def ready(d: Any) -> Any:
            return next((e for e in d.find_elements("xpath", xpath) if e.is_displayed() and e.is_enabled()), False)

        return self.until(ready, timeout, f"nothing clickable at {xpath!r}")

    def click(self, xpath: str, timeout: float | None = None) -> None:
        """Find and click in one step, again while the SPA re-renders the element under us."""
        def clicked(d: Any) -> bool:
            element = next((e for e in d.find_elements("xpath", xpath) if e.is_displayed() and e.is_enabled()), None)
            if element is None:
                return False
            element.click()
            return True

        self.until(clicked, timeout, f"could not click {xpath!r}")

    def click_until(self, xpath: str, done: Callable[[Any], Any], timeout: float | None = None,
                    message: str = "") -> None:
        """Click ``xpath`` until ``done`` holds: a click that lands while the SPA re-renders the
        element (a list filtering as one types) is lost, so click again rather than wait forever."""
        def clicked_and_done(d: Any) -> Any:
            if done(d):
                return True
            element = next((e for e in d.find_elements("xpath", xpath) if e.is_displayed() and e.is_enabled()), None)
            if element is not None:
                element.click()
            return self._settled(done)

        self.until(clicked_and_done, timeout, message or f"clicking {xpath!r} did not get there")

    def _settled(self, done: Callable[[Any], Any], seconds: float = 2.0) -> Any:
        """``done`` within a short while after a click (navigation takes a moment)."""
        from selenium.common.exceptions import TimeoutException
        from selenium.webdriver.support.ui import WebDriverWait

        try:
            return WebDriverWait(self.driver, seconds, poll_frequency=0.1).until(done)
        except TimeoutException:
            return False

    def text_appears(self, text: str, timeout: float | None = None) -> None:
        self.until(lambda d: text in d.find_element("tag name", "body").text, timeout, f"{text!r} never shown")

    def shot(self, name: str) -> Path:
        path = self.artifacts / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def dump(self, name: str) -> Path:
        """The live DOM, for finding selectors after a failure."""
        path = self.artifacts / f"{name}.html"
        path.write_text(self.driver.page_source)
        return path

