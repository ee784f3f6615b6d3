"""cors-addon: what CORS preflights cost and why cross-origin requests fail.

The package is an engine with two doors: the mitmproxy addon (``cors_addon.addon``)
and the ``cors-audit`` command line (``cors_addon.cli``). Everything reachable from
the addon imports only the standard library and mitmproxy, so the addon also loads
into a mitmproxy that has no other packages installed.
"""

__version__ = "0.1.0"
SCHEMA = "cors-audit/1"
