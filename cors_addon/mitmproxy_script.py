"""The addon as an installed script: ``mitmdump -s "$(cors-addon-script)"``.

Identical to the repository's ``cors_addon.py`` shim, but inside the package so it
ships with ``pip install``.
"""

from cors_addon.addon import script_globals

globals().update(script_globals())
