"""What the tests share: the repository's root, the recordings, and the browser check."""

import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
WILD = ROOT / "recordings" / "wild"
CHROMIUM = "/usr/bin/chromium"
FIREFOX = "/usr/bin/firefox-esr"


def require_browser(path: str) -> None:
    """Skip a browser test where the browser is missing, with the command that installs
    it; under ``CI=true`` a missing browser fails instead (CI installs them, so a skip
    there would hide a broken install)."""
    if not os.path.exists(path):
        message = f"{path} is not installed (apt-get install {os.path.basename(path)})"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def wild():
    return lambda name: str(WILD / name)
