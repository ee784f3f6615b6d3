"""``cors-addon-script`` prints the path of the addon script, for use from any
directory after ``pip install``: ``mitmdump -s "$(cors-addon-script)"``."""

from __future__ import annotations

import os


def script_path() -> str:
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "mitmproxy_script.py")


def main() -> None:
    print(script_path())
