"""Synthetic but realistic browser traffic, made by a script of ours (fixed seed).

One browser session visits a shop (``app``) many times. Each visit is a page load:

- the navigation (``Sec-Fetch-Dest: document``, ``Sec-Fetch-Mode: navigate``);
- a parallel burst of same-origin assets (scripts, styles, images; one module script
  in ``cors`` mode, which stays same-origin);
- simple CORS GETs to a CDN (fonts, a locale file) answered with
  ``Access-Control-Allow-Origin: *``, and an analytics ``text/plain`` POST;
- a parallel burst of API calls with ``Authorization`` (GET, PUT and POST JSON) to an
  API that answers preflights with ``Access-Control-Max-Age: 600``: the browser's
  preflight cache is modelled (per URL, 600 s), so only new URLs are preflighted, and
  two components sometimes ask for the same URL at once (parallel preflights);
- a credentialed call (cookie + ``Access-Control-Allow-Credentials: true``);
- a legacy API without ``Max-Age`` (answers live 5 s), polled again a few seconds
  later: redundant preflights;
- blocked flows: a payment partner whose preflight is a 404 without
  ``Access-Control-Allow-Origin`` (the request is never sent), and a reviews widget
  fetched in ``cors`` mode whose response has no ``Access-Control-Allow-Origin``.

Each preflight is sent first; its request leaves after the preflight completed. The
traffic is rendered twice from the same exchanges: a Chrome-style HAR (pages,
``pageref``, pseudo-headers, ``_initiator``, ``blocked`` holding the preflight's time)
and a mitmproxy ``.mitm`` flow file written with mitmproxy's own ``FlowWriter`` (in
completion order, like ``mitmdump -w``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timezone

SEED = 20240611
GENERATOR_VERSION = 5
"""Bump when the generated traffic changes, so cached files are regenerated."""

APP = "https://app.shop.example"
API = "https://api.shop.example"
LEGACY = "https://legacy.shop.example"
CDN = "https://cdn.shopstatic.example"
COLLECT = "https://collect.metrics.example"
PAY = "https://pay.partner.example"
REVIEWS = "https://reviews.partner.example"
SERVER_IPS = {
    APP: "203.0.113.10", API: "203.0.113.20", LEGACY: "198.51.100.7", CDN: "192.0.2.44",
    COLLECT: "192.0.2.80", PAY: "198.51.100.90", REVIEWS: "198.51.100.120",
}
START = 1_718_092_800.0  # 2024-06-11T08:00:00Z

UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
      "Chrome/126.0.0.0 Safari/537.36")
CLIENT_HINTS = [
    ("sec-ch-ua", '"Not/A)Brand";v="8", "Chromium";v="126", "Google Chrome";v="126"'),
    ("sec-ch-ua-mobile", "?0"),
    ("sec-ch-ua-platform", '"Linux"'),
]
API_PREFLIGHT_ANSWER = [
    ("access-control-allow-origin", APP),
    ("access-control-allow-methods", "GET, POST, PUT, DELETE"),
    ("access-control-allow-headers", "authorization, content-type, x-request-id"),
    ("access-control-allow-credentials", "true"),
    ("access-control-max-age", "600"),
    ("vary", "Origin"),
]
LEGACY_PREFLIGHT_ANSWER = [
    ("access-control-allow-origin", APP),
    ("access-control-allow-methods", "GET"),
    ("access-control-allow-headers", "Authorization"),
]
ROUTES = ["home", "category", "product", "product", "product", "cart", "account", "search"]
CATEGORIES = ["shoes", "jackets", "bags", "hats", "socks", "shirts"]


@dataclass(slots=True)
class Ex:
    """One exchange of the synthetic session, independent of the file format."""

    method: str
    url: str
    req_headers: list[tuple[str, str]]
    status: int
    resp_headers: list[tuple[str, str]]
    started: float
    """When the page issued the request (HAR ``startedDateTime``)."""
    wire: float
    """When it left for the network (after its preflight)."""
    ended: float
    page: str
    resource_type: str
    initiator: dict
    mime: str = ""
    req_body: bytes = b""
    resp_body: bytes = b""
    text_in_har: bool = False
    error: str | None = None
    priority: str = "High"
    connection: str = ""


@dataclass(slots=True)
class Page:
    id: str
    url: str
    started: float


@dataclass(slots=True)
class Session:
    pages: list[Page] = field(default_factory=list)
    exchanges: list[Ex] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for ex in self.exchanges:
            out[ex.resource_type] = out.get(ex.resource_type, 0) + 1
        return out


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(ts * 1000) % 1000:03d}Z"


_WORDS = [b"item", b"price", b"lorem", b"ipsum", b"cart", b"<div>", b"</div>", b"class", b"data", b"{", b"}"]


def _body(rng: random.Random, size: int) -> bytes:
    chunk = b" ".join(rng.choice(_WORDS) for _ in range(12)) + b" %08x\n" % rng.getrandbits(32)
    return chunk * (size // len(chunk) + 1)


class _Generator:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.session = Session()
        self.cache: dict[tuple[str, bool], float] = {}
        """The browser's preflight cache: (url, credentialed) -> expiry."""
        self.token = "Bearer eyJhbGciOiJIUzI1NiJ9." + "%032x" % self.rng.getrandbits(128)
        self.cookie = "sid=%032x; theme=dark; consent=1" % self.rng.getrandbits(128)
        self.conn_ids = {origin: 1000 + i * 97 for i, origin in enumerate(SERVER_IPS)}
        self.page: Page | None = None
        self.prev_url: str | None = None

    # -- building blocks -------------------------------------------------------

    def _conn(self, origin: str) -> str:
        if self.rng.random() < 0.02:
            self.conn_ids[origin] += 1
        return str(self.conn_ids[origin])

    def _add(self, ex: Ex) -> Ex:
        ex.connection = self._conn(ex.url.split("/", 3)[0] + "//" + ex.url.split("/", 3)[2])
        self.session.exchanges.append(ex)
        return ex

    def _common(self, dest: str, mode: str, site: str) -> list[tuple[str, str]]:
        assert self.page is not None
        return [
            *CLIENT_HINTS,
            ("user-agent", UA),
            ("accept-language", "en-GB,en;q=0.9"),
            ("accept-encoding", "gzip, deflate, br, zstd"),
            ("sec-fetch-dest", dest),
            ("sec-fetch-mode", mode),
            ("sec-fetch-site", site),
            ("referer", self.page.url),
        ]

    def _server(self, kind: str, length: int) -> list[tuple[str, str]]:
        return [
            ("date", "Tue, 11 Jun 2024 08:00:00 GMT"),
            ("content-type", kind),
            ("content-length", str(length)),
            ("server", "nginx"),
            ("x-request-id", "%016x" % self.rng.getrandbits(64)),
        ]

    def navigate(self, t: float, route: str) -> float:
        rng = self.rng
        if route == "home":
            path = "/"
        elif route == "category":
            path = f"/c/{rng.choice(CATEGORIES)}?page={rng.randint(1, 5)}"
        elif route == "product":
            path = f"/p/{rng.randint(1, 400)}"
        else:
            path = "/" + route
        url = APP + path
        pid = f"page_{len(self.session.pages) + 1}"
        self.page = Page(pid, url, t)
        self.session.pages.append(self.page)
        headers = [
            ("accept", "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"),
            ("cookie", self.cookie),
            ("upgrade-insecure-requests", "1"),
            *self._common("document", "navigate", "same-origin" if self.prev_url else "none"),
            ("sec-fetch-user", "?1"),
        ]
        if self.prev_url:
            headers[-2] = ("referer", self.prev_url)
        else:
            del headers[-2]
        body = _body(rng, rng.randint(1500, 4000))
        end = t + rng.uniform(0.08, 0.4)
        self._add(Ex("GET", url, headers, 200, [
            *self._server("text/html; charset=utf-8", len(body)),
            ("cache-control", "no-cache"), ("content-security-policy", "default-src 'self'; connect-src *"),
        ], t, t, end, pid, "document", {"type": "other"}, "text/html", resp_body=body,
            text_in_har=True, priority="VeryHigh"))
        self.prev_url = url
        return end

    def assets(self, t: float) -> float:
        rng, last = self.rng, t
        kinds = [("script", "js", "application/javascript")] * 3 + [("stylesheet", "css", "text/css")] * 2 + \
                [("image", "webp", "image/webp")] * 5
        count = rng.randint(6, 11)
        for i in range(count):
            dest, ext, mime = kinds[rng.randrange(len(kinds))]
            start = t + rng.uniform(0.001, 0.03)
            end = start + rng.uniform(0.01, 0.15)
            mode = "cors" if (dest == "script" and i == 0) else "no-cors"
            headers = [("accept", "*/*" if dest != "image" else "image/avif,image/webp,image/apng,*/*;q=0.8"),
                       *self._common({"stylesheet": "style"}.get(dest, dest), mode, "same-origin")]
            if mode == "cors":
                headers.insert(0, ("origin", APP))
            body = _body(rng, rng.randint(800, 3000))
            self._add(Ex("GET", f"{APP}/static/{dest}/{rng.randrange(60):02d}.{rng.getrandbits(32):08x}.{ext}",
                         headers, 200, [*self._server(mime, len(body)), ("cache-control", "public, max-age=31536000"),
                                        ("etag", '"%x"' % rng.getrandbits(48))],
                         start, start, end, self.page.id, dest,
                         {"type": "parser", "url": self.page.url, "lineNumber": rng.randint(5, 60)}, mime,
                         resp_body=body, priority="Low" if dest == "image" else "High"))
            last = max(last, end)
        return last

    def simple_cors(self, t: float) -> None:
        rng = self.rng
        for _ in range(rng.randint(1, 2)):
            start = t + rng.uniform(0.0, 0.05)
            body = _body(rng, rng.randint(1000, 2500))
            self._add(Ex("GET", f"{CDN}/fonts/inter-{rng.choice(['400', '500', '700'])}.woff2",
                         [("origin", APP), ("accept", "*/*"), *self._common("font", "cors", "cross-site")],
                         200, [*self._server("font/woff2", len(body)), ("access-control-allow-origin", "*"),
                               ("cache-control", "public, max-age=31536000")],
                         start, start, start + rng.uniform(0.02, 0.12), self.page.id, "font",
                         {"type": "parser", "url": f"{APP}/static/stylesheet/00.css"}, "font/woff2", resp_body=body))
        start = t + rng.uniform(0.0, 0.05)
        body = b'{"currency":"EUR","locale":"en-GB","features":["reviews","wishlist"]}'
        self._add(Ex("GET", f"{CDN}/config/en-GB.json",
                     [("origin", APP), ("accept", "application/json"), *self._common("empty", "cors", "cross-site")],
                     200, [*self._server("application/json", len(body)), ("access-control-allow-origin", "*")],
                     start, start, start + rng.uniform(0.02, 0.09), self.page.id, "fetch", self._script(),
                     "application/json", resp_body=body, text_in_har=True))

    def _script(self) -> dict:
        rng = self.rng
        return {"type": "script", "stack": {"callFrames": [
            {"functionName": "request", "scriptId": "21", "url": f"{APP}/static/script/07.app.js",
             "lineNumber": 1, "columnNumber": rng.randint(1000, 90000)},
            {"functionName": "", "scriptId": "21", "url": f"{APP}/static/script/07.app.js",
             "lineNumber": 1, "columnNumber": rng.randint(1000, 90000)},
        ]}}

    def cors_call(self, t: float, method: str, url: str, *, credentials: bool = False, body: bytes = b"",
                  preflight_answer: list | None = None, preflight_status: int = 204, max_age: float | None = 600,
                  follow: bool = True) -> float:
        """A fetch() that needs a preflight: the preflight unless the browser's cache
        still holds an answer for this URL, then the request once it completed."""
        rng = self.rng
        origin = url.split("/", 3)[0] + "//" + url.split("/", 3)[2]
        req_names = ["authorization", "content-type"] if body else ["authorization"]
        initiator = self._script()
        cached = self.cache.get((url, credentials), 0.0) > t
        wire = t + rng.uniform(0.0005, 0.002)
        if not cached:
            pf_start = t + rng.uniform(0.0002, 0.001)
            pf_end = pf_start + rng.uniform(0.02, 0.12)
            headers = [("accept", "*/*"), ("access-control-request-method", method),
                       ("access-control-request-headers", ",".join(req_names)), ("origin", APP),
                       ("user-agent", UA), ("sec-fetch-mode", "cors"), ("sec-fetch-site", "same-site"),
                       ("sec-fetch-dest", "empty"), ("referer", self.page.url),
                       ("accept-encoding", "gzip, deflate, br, zstd"), ("accept-language", "en-GB,en;q=0.9")]
            answer = preflight_answer if preflight_answer is not None else []
            resp = [*self._server("text/html" if preflight_status >= 400 else "text/plain", 0), *answer]
            self._add(Ex("OPTIONS", url, headers, preflight_status, resp, pf_start, pf_start, pf_end,
                         self.page.id, "preflight", {"type": "preflight", "url": url}, "text/plain"))
            if preflight_status >= 300 or not follow:
                return pf_end
            if max_age is not None:
                self.cache[(url, credentials)] = pf_end + max_age
            else:
                self.cache[(url, credentials)] = pf_end + 5
            wire = pf_end + rng.uniform(0.0005, 0.002)
        headers = [("accept", "application/json"), ("authorization", self.token)]
        if body:
            headers.append(("content-type", "application/json"))
        if credentials:
            headers.append(("cookie", self.cookie))
        headers += [("origin", APP), *self._common("empty", "cors", "same-site")]
        rbody = b'{"ok":true,"items":[' + b",".join(
            b'{"id":%d,"qty":%d}' % (rng.randint(1, 999), rng.randint(1, 4)) for _ in range(rng.randint(1, 12))) + b"]}"
        resp = [*self._server("application/json", len(rbody)), ("access-control-allow-origin", APP), ("vary", "Origin")]
        if credentials:
            resp.append(("access-control-allow-credentials", "true"))
        end = wire + rng.uniform(0.03, 0.25)
        self._add(Ex(method, url, headers, 200, resp, t, wire, end, self.page.id, "fetch", initiator,
                     "application/json", req_body=body, resp_body=rbody, text_in_har=True))
        return end

    # -- one page load ---------------------------------------------------------

    def visit(self, t: float, route: str, stay: float) -> None:
        rng = self.rng
        t = self.navigate(t, route)
        assets_end = self.assets(t + 0.005)
        self.simple_cors(t + rng.uniform(0.02, 0.06))
        api_t = assets_end + rng.uniform(0.01, 0.08)
        calls = [("GET", f"{API}/v1/session", b"")]
        if rng.random() < 0.15:
            calls.append(("GET", f"{API}/v1/session", b""))  # two components at once: parallel preflights
        product = rng.randint(1, 400)
        if route == "category":
            calls.append(("GET", f"{API}/v1/products?category={rng.choice(CATEGORIES)}&page={rng.randint(1, 5)}", b""))
        elif route == "product":
            calls.append(("GET", f"{API}/v1/products/{product}", b""))
            if rng.random() < 0.15:
                calls.append(("GET", f"{API}/v1/products/{product}", b""))  # parallel preflights
            calls.append(("GET", f"{API}/v1/products/{product}/stock?store={rng.randint(1, 30)}", b""))
            if rng.random() < 0.3:
                calls.append(("PUT", f"{API}/v1/cart/items/{product}", b'{"qty":1}'))
        elif route == "cart":
            calls.append(("GET", f"{API}/v1/cart", b""))
            calls.append(("PUT", f"{API}/v1/cart/items/{rng.randint(1, 400)}", b'{"qty":2}'))
        elif route == "search":
            calls.append(("GET", f"{API}/v1/search?q={rng.choice(CATEGORIES)}&_={int(api_t * 1000)}", b""))
        calls.append(("POST", f"{API}/v1/events", b'{"type":"page_view","route":"%s"}' % route.encode()))
        for method, url, body in calls:
            self.cors_call(api_t + rng.uniform(0, 0.01), method, url, body=body,
                           preflight_answer=API_PREFLIGHT_ANSWER)
        if route == "account":
            self.cors_call(api_t + rng.uniform(0, 0.01), "GET", f"{API}/v1/account/orders", credentials=True,
                           preflight_answer=API_PREFLIGHT_ANSWER)
        if route == "product":
            rec = f"{LEGACY}/api/recommendations?sku={product}"
            self.cors_call(api_t + rng.uniform(0.05, 0.2), "GET", rec, preflight_answer=LEGACY_PREFLIGHT_ANSWER,
                           max_age=None)
            if stay > 12:
                self.cors_call(api_t + rng.uniform(6, 9), "GET", rec, preflight_answer=LEGACY_PREFLIGHT_ANSWER,
                               max_age=None)
            if rng.random() < 0.2:
                start = api_t + rng.uniform(0.05, 0.3)
                body = b'{"rating":4.4,"count":128}'
                self._add(Ex("GET", f"{REVIEWS}/widget/{product}.json",
                             [("origin", APP), ("accept", "application/json"),
                              *self._common("empty", "cors", "cross-site")],
                             200, self._server("application/json", len(body)), start, start,
                             start + rng.uniform(0.04, 0.2), self.page.id, "fetch", self._script(),
                             "application/json", resp_body=body, text_in_har=True))
        if route == "cart" and rng.random() < 0.35:
            self.cors_call(api_t + rng.uniform(0.1, 0.5), "POST", f"{PAY}/v2/payment-intents", body=b'{"amount":4200}',
                           preflight_answer=[], preflight_status=404, follow=False)
        start = api_t + rng.uniform(0.2, 1.0)
        body = b'{"e":"pv","r":"%s","t":%d}' % (route.encode(), int(start * 1000))
        self._add(Ex("POST", f"{COLLECT}/v1/collect",
                     [("origin", APP), ("content-type", "text/plain;charset=UTF-8"), ("accept", "*/*"),
                      *self._common("empty", "cors", "cross-site")],
                     204, [*self._server("text/plain", 0), ("access-control-allow-origin", APP)],
                     start, start, start + rng.uniform(0.02, 0.1), self.page.id, "ping", self._script(),
                     "text/plain", req_body=body))

    def tail(self, t: float, count: int) -> None:
        """Fill up to an exact size with same-origin images on the last page."""
        for _ in range(count):
            start = t + self.rng.uniform(0.0, 0.05)
            self._add(Ex("GET", f"{APP}/static/image/lazy-{self.rng.getrandbits(32):08x}.webp",
                         [("accept", "image/avif,image/webp,*/*;q=0.8"), *self._common("image", "no-cors", "same-origin")],
                         200, self._server("image/webp", 1200), start, start, start + 0.03, self.page.id, "image",
                         {"type": "parser", "url": self.page.url}, "image/webp", resp_body=b"\0" * 1200,
                         priority="Low"))


def generate(n: int, seed: int = SEED) -> Session:
    """Exactly ``n`` exchanges of one browsing session, sorted by start time."""
    g = _Generator(seed)
    t = START
    while True:
        route = g.rng.choice(ROUTES)
        stay = g.rng.uniform(2.0, 30.0)
        mark = len(g.session.exchanges)
        pages = len(g.session.pages)
        saved_cache = dict(g.cache)
        state = g.rng.getstate()
        g.visit(t, route, stay)
        if len(g.session.exchanges) > n:
            del g.session.exchanges[mark:]
            del g.session.pages[pages:]
            g.cache = saved_cache
            g.rng.setstate(state)
            if n > mark:
                g.navigate(t, "home")
                g.tail(t + 0.5, n - len(g.session.exchanges))
            break
        t += stay
        if len(g.session.exchanges) == n:
            break
    g.session.exchanges.sort(key=lambda e: e.started)
    return g.session


def stream(seed: int = SEED):
    """Endless page loads, one list of exchanges (in completion order) at a time, with
    nothing kept between them: the 1,000,000-flow live session is fed from this."""
    g = _Generator(seed)
    t = START
    while True:
        route = g.rng.choice(ROUTES)
        stay = g.rng.uniform(2.0, 30.0)
        g.visit(t, route, stay)
        batch = sorted(g.session.exchanges, key=lambda e: e.ended)
        g.session.exchanges.clear()
        g.session.pages.clear()
        if len(g.cache) > 10_000:
            g.cache = {k: v for k, v in g.cache.items() if v > t}
        t += stay
        yield batch
