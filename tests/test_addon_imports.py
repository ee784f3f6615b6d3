"""The live addon loads into a mitmproxy that has no other packages installed."""

import subprocess
import sys

from tests.conftest import ROOT


SCRIPT = r'''
import importlib.abc, sys

class Refuse(importlib.abc.MetaPathFinder):
    """Only the standard library and mitmproxy (with its own dependencies) may load."""
    BLOCKED = {"tabulate", "msgspec", "orjson", "markdown_it", "hypothesis", "playwright", "pytest"}
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in self.BLOCKED:
            raise ImportError(f"{name} is not installed in a bare mitmproxy")
        return None

sys.meta_path.insert(0, Refuse())
from mitmproxy import http
from mitmproxy.test import taddons, tflow
from cors_addon.addon import CorsAddon

addon = CorsAddon()
with taddons.context(addon) as tctx:
    f = tflow.tflow(req=http.Request.make("OPTIONS", "http://api.test/x", b"",
        {"Origin": "http://app.test", "Access-Control-Request-Method": "PUT"}))
    f.response = http.Response.make(404, b"", {})
    addon.request(f)
    addon.response(f)
    print(addon.summary([f]))
    print(sorted(m for m in sys.modules if m.split(".")[0] in Refuse.BLOCKED))
'''


def test_addon_needs_nothing_but_mitmproxy():
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "PreflightMissingAllowOriginHeader" in proc.stdout
    assert proc.stdout.strip().endswith("[]")
