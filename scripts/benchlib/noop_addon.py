"""A script addon that does nothing in the hooks cors_addon uses: the live benchmark's
floor (what mitmproxy itself spends on dispatching to a script addon)."""


class Noop:
    def request(self, flow):
        pass

    def response(self, flow):
        pass

    def error(self, flow):
        pass


addons = [Noop()]
