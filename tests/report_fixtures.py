"""What the report tests share: a report page opened in the web page test's headless Chromium."""

import os
from pathlib import Path

import pytest
from test_web_page import CHROMIUM, Browser

# Each image's alt text and whether it loaded (a decoded figure, not a broken-image icon).
IMAGES_LOADED = "Array.from(document.images).map(i => [i.alt, i.complete && i.naturalWidth > 100])"


def open_page(page: Path, tmp_path: Path) -> Browser:
    """A headless Chromium (profile under `tmp_path`) that has loaded `page`; the caller closes
    it. Fails the test when Chromium is missing: the report tests are about rendering."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(f"Chromium not found at {CHROMIUM} (`make test` installs it)")
    (tmp_path / "profile").mkdir()
    browser = Browser(tmp_path / "profile")
    try:
        browser.send("Page.navigate", url=page.as_uri())
        browser.wait_for("document.readyState === 'complete'")
    except BaseException:
        browser.close()
        raise
    return browser
