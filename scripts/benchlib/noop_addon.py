"""A script that does nothing in the hooks cors_addon uses, shaped as ``cors_addon.py``
is (the hooks are the module's own functions): the live benchmark's floor, what
mitmproxy itself spends on dispatching to such a script."""


def request(flow):
    pass


def response(flow):
    pass


def error(flow):
    pass
