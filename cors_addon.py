"""mitmproxy entry point: ``mitmdump -s cors_addon.py``.

mitmproxy loads ``-s`` scripts under its own module name, so this shim only imports
the package absolutely. The module itself is the addon (its hooks are the addon's;
:func:`cors_addon.addon.script_globals` says why). Restart mitmproxy after editing
``cors_addon/``: script reloading watches this file only (mitmproxy/mitmproxy#4253).
"""

from cors_addon.addon import script_globals

globals().update(script_globals())
