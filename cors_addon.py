"""mitmproxy entry point: ``mitmdump -s cors_addon.py``.

mitmproxy loads ``-s`` scripts under its own module name, so this shim only imports
the package absolutely. Restart mitmproxy after editing ``cors_addon/``: script
reloading watches this file only (mitmproxy/mitmproxy#4253).
"""

from cors_addon.addon import CorsAddon

addons = [CorsAddon()]
