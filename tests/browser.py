"""A headless Chromium (Debian's ``chromium`` and ``chromium-driver``) driven by Selenium, for the
console's browser tests: screenshots into a folder, downloads into another, waits on page content."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
T = TypeVar("T")


def browser_available() -> str | None:
    """Why the browser tests cannot run here (None when they can)."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (the dev extra)"
    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.exists():
            return f"{path} is missing (Debian's chromium and chromium-driver)"
    return None


class Browser:
    """One Chromium with a few helpers; ``shots``: where :meth:`shot` saves screenshots."""

    def __init__(self, driver: Any, shots: Path, downloads: Path) -> None:
        self.driver = driver
        self.shots = shots
        self.downloads = downloads
        self._count = 0

    def get(self, url: str) -> None:
        """Load ``url`` afresh (a change of the hash alone would not reload the page), and wait for a
        console page to have drawn its route."""
        self.driver.get("about:blank")
        self.driver.get(url)
        if "/digitalhub/console/" in url:
            self.settled()

    def settled(self, timeout: float = 30.0) -> None:
        """Wait until the console shows the page of the current address (its router marks <main>)."""
        script = "const m = document.getElementById('main'); return !!m && m.dataset.route === location.hash;"
        self.wait(lambda: self.driver.execute_script(script), timeout, "the console's page of the address")

    def wait(self, what: Callable[[], T | None], timeout: float = 30.0, message: str = "") -> T:
        """Poll ``what`` until it returns something truthy; its value. Exceptions count as not yet."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                value = what()
                if value:
                    return value
            except Exception as exc:  # stale elements, not there yet
                last = exc
            time.sleep(0.2)
        self.shot("timeout")
        raise TimeoutError(
            f"{message or 'condition'} not met in {timeout}s (last error: {last!r}); url {self.driver.current_url}"
        )

    def css(self, selector: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def all(self, selector: str) -> list[Any]:
        from selenium.webdriver.common.by import By

        return list(self.driver.find_elements(By.CSS_SELECTOR, selector))

    def find(self, selector: str, timeout: float = 30.0) -> Any:
        """The first visible element matching ``selector``, once there is one."""
        return self.wait(lambda: next((e for e in self.all(selector) if e.is_displayed()), None), timeout, selector)

    def text(self, selector: str = "main") -> str:
        return str(self.css(selector).text)

    def wait_text(self, needle: str, selector: str = "main", timeout: float = 30.0) -> str:
        return self.wait(
            lambda: t if needle in (t := self.text(selector)) else None, timeout, f"{needle!r} in {selector}"
        )

    def button(self, label: str, within: str = "body") -> Any:
        """The visible button (or link styled as one) whose text is ``label``."""
        from selenium.webdriver.common.by import By

        def found() -> Any:
            root = self.css(within)
            for el in root.find_elements(By.CSS_SELECTOR, "button, a.button, a"):
                if el.is_displayed() and el.text.strip().lower() == label.lower():
                    return el
            return None

        return self.wait(found, message=f"button {label!r}")

    def fill(self, label: str, value: str, within: str = "main") -> Any:
        """Type ``value`` into the field labelled ``label`` (found through its <label for>)."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import Select

        def control() -> Any:
            for lab in self.css(within).find_elements(By.CSS_SELECTOR, "label"):
                if lab.is_displayed() and lab.text.strip() == label:
                    return self.driver.find_element(By.ID, lab.get_attribute("for"))
            return None

        el = self.wait(control, message=f"field {label!r}")
        if el.tag_name == "select":
            Select(el).select_by_value(value)
        else:
            el.clear()
            el.send_keys(value)
        return el

    def shot(self, name: str) -> Path:
        self._count += 1
        path = self.shots / f"{self._count:02d}-{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def unlabelled_fields(self) -> list[str]:
        """Form controls of the page (and its open dialogs) without a <label for> or an aria-label."""
        script = """
        return Array.from(document.querySelectorAll('input:not([type=hidden]), select, textarea'))
          .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.hidden)
          .map(el => el.outerHTML.slice(0, 120));
        """
        return list(self.driver.execute_script(script))


@contextmanager
def chromium(shots: Path, downloads: Path, width: int = 1400, height: int = 1000) -> Iterator[Browser]:
    """A headless Chromium for the duration of the block (quit on exit, with its driver)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    shots.mkdir(parents=True, exist_ok=True)
    downloads.mkdir(parents=True, exist_ok=True)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={width},{height}", "--no-first-run", "--disable-extensions"):  # fmt: skip
        options.add_argument(arg)
    options.add_experimental_option(
        "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    )
    service = Service(executable_path=str(CHROMEDRIVER), log_output=str(shots / "chromedriver.log"))
    driver = webdriver.Chrome(options=options, service=service)
    try:
        driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
        yield Browser(driver, shots, downloads)
    finally:
        driver.quit()
        shutil.rmtree(shots / "profile", ignore_errors=True)
