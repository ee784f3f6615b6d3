"""mitmproxy addon: answer the browsers' background traffic locally, never upstream.

Chromium and Firefox keep talking to update, safe-browsing, account and remote-settings hosts
even with every quieting flag/pref set, and with an explicit proxy all of it reaches mitmdump.
The lab runs on a closed network, so letting mitmproxy dial out only produces slow DNS/connect
failures. Plain-HTTP requests to such hosts get a local 204; CONNECT tunnels to them are
refused (a 2xx would make mitmproxy intercept TLS with a CA the browser does not trust).
Only the loopback lab origins pass through. Recordings exclude the rest with
save_stream_filter (see common.LAB_FILTER).
"""

from mitmproxy import http

LAB_HOSTS = frozenset({"127.0.0.1", "localhost"})


class ProxyGuard:
    def http_connect(self, flow: http.HTTPFlow) -> None:
        if flow.request.host not in LAB_HOSTS:
            flow.response = http.Response.make(403, b"", {"Content-Length": "0"})

    def request(self, flow: http.HTTPFlow) -> None:
        if flow.request.host not in LAB_HOSTS:
            flow.response = http.Response.make(204)


addons = [ProxyGuard()]
