"""Record the lab with real headless Firefox ESR through mitmdump.

Playwright cannot drive the distribution's Firefox (it needs its own patched build), so
Firefox runs as a plain subprocess with a fresh profile whose user.js points it at mitmdump
and quiets background traffic. Without CDP the page's own reports are the truth (ok/blocked;
Firefox gives script no reason either), and the server log shows whether a preflight went out.
The pages chain themselves: /run redirects to the first scenario and each page navigates to
the next when done, all in one tab, so the preflight cache carries across page loads as it
does for a real user. The run ends when the server has seen the last page's /done.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from pathlib import Path

from .common import Session, kill_group, log, run_lab

FIREFOX = "/usr/bin/firefox-esr"
TIMEOUT_S = 300

# Background services that would otherwise phone home through the proxy on every start.
QUIET_PREFS = {
    "app.normandy.enabled": False,
    "app.shield.optoutstudies.enabled": False,
    "app.update.auto": False,
    "app.update.enabled": False,
    "browser.aboutwelcome.enabled": False,
    "browser.newtabpage.enabled": False,
    "browser.newtabpage.activity-stream.feeds.system.topstories": False,
    "browser.newtabpage.activity-stream.feeds.topsites": False,
    "browser.ping-centre.telemetry": False,
    "browser.region.network.url": "",
    "browser.region.update.enabled": False,
    "browser.safebrowsing.blockedURIs.enabled": False,
    "browser.safebrowsing.downloads.enabled": False,
    "browser.safebrowsing.downloads.remote.enabled": False,
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "browser.safebrowsing.provider.google4.updateURL": "",
    "browser.safebrowsing.provider.mozilla.updateURL": "",
    "browser.search.geoSpecificDefaults": False,
    "browser.search.update": False,
    "browser.sessionstore.resume_from_crash": False,
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.homepage_override.mstone": "ignore",
    "browser.startup.page": 0,
    "browser.topsites.contile.enabled": False,
    "captivedetect.canonicalURL": "",
    "datareporting.healthreport.uploadEnabled": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "dom.push.connection.enabled": False,
    "dom.push.enabled": False,
    "extensions.blocklist.enabled": False,
    "extensions.getAddons.cache.enabled": False,
    "extensions.update.enabled": False,
    "extensions.systemAddon.update.enabled": False,
    "identity.fxaccounts.enabled": False,
    "media.gmp-gmpopenh264.enabled": False,
    "media.gmp-manager.url": "",
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "network.dns.disablePrefetch": True,
    "network.predictor.enabled": False,
    "network.prefetch-next": False,
    "network.trr.mode": 5,
    "services.settings.server": "http://127.0.0.1:9/",
    "toolkit.telemetry.enabled": False,
    "toolkit.telemetry.server": "",
    "toolkit.telemetry.unified": False,
}


def user_js(proxy_port: int) -> str:
    prefs = {
        # Route loopback through the proxy: Firefox never proxies localhost/127.0.0.1 unless allowed.
        "network.proxy.type": 1,
        "network.proxy.http": "127.0.0.1",
        "network.proxy.http_port": proxy_port,
        "network.proxy.ssl": "127.0.0.1",
        "network.proxy.ssl_port": proxy_port,
        "network.proxy.allow_hijacking_localhost": True,
        "network.proxy.no_proxies_on": "",
        "network.http.http3.enable": False,
        # Keep the lab on plain http (no HTTPS-First upgrade attempts of the page navigations).
        "dom.security.https_first": False,
        "dom.security.https_first_schemeless": False,
        "dom.security.https_only_mode": False,
        **QUIET_PREFS,
    }
    return "".join(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n" for k, v in prefs.items())


def firefox_version() -> str:
    return subprocess.run([FIREFOX, "--version"], capture_output=True, text=True).stdout.strip()


def drive(server, proxy) -> Session:
    with tempfile.TemporaryDirectory(prefix="lab-firefox-") as tmp:
        profile = Path(tmp, "profile")
        profile.mkdir()
        (profile / "user.js").write_text(user_js(proxy.port))
        with open(Path(tmp, "firefox.log"), "w") as ff_log:
            proc = subprocess.Popen(
                [FIREFOX, "-headless", "-no-remote", "-profile", str(profile), server.origins["page"] + "/run"],
                stdout=ff_log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )
            finished = wait_all_done(server, proc)
            kill_group(proc)
        closed_at = time.time()
        if not finished:
            log("WARNING firefox: not every page reported done; firefox log tail:\n"
                + Path(tmp, "firefox.log").read_text(errors="replace")[-3000:])
    page_urls: dict[str, list[str]] = {}
    for scn, idx in server.loads:
        page_urls.setdefault(scn.name, []).append(server.page_url(scn, idx, chain=True))
    return Session(firefox_version(), closed_at, page_urls, lambda scn, step, rep: {},
                   notes="NOTE {browser} differs from the Chromium expect")


def main() -> None:
    run_lab("firefox", drive)


def wait_all_done(server, proc: subprocess.Popen) -> bool:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        if server.all_done.wait(0.2):
            time.sleep(0.3)
            return True
        if proc.poll() is not None:
            log(f"WARNING firefox exited early with {proc.returncode}")
            return False
    return False


if __name__ == "__main__":
    main()
