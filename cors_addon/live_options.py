"""The addon's options, declared and checked (mitmproxy's ``load`` and ``configure``)."""

from __future__ import annotations

from mitmproxy import exceptions

from cors_addon.engines import ENGINES
from cors_addon.writers import FORMATS


def add_options(loader) -> None:
    loader.add_option(
        "cors_report", str, "",
        """Write the CORS audit report here when mitmproxy exits (format from the
        suffix: .json, .md, .txt, .html; or cors_format). The report keeps every
        flow's result (about 2 KB a flow); an HTML report keeps every exchange's
        headers too, like hardump (about 8 KB a flow).""",
    )
    loader.add_option(
        "cors_format", str, "table",
        "Format of the cors_report file and of cors.summary.",
        choices=list(FORMATS),
    )
    loader.add_option(
        "cors_browser", str, "chromium",
        "Engine profile for Max-Age caps, parsing and preflight-cache rules.",
        choices=sorted(ENGINES),
    )
    loader.add_option(
        "cors_annotate", str, "",
        """Write a HAR of all flows with a _cors object on each entry when mitmproxy
        exits. Like hardump, this keeps flows in memory.""",
    )
    loader.add_option(
        "cors_show_secrets", bool, False,
        """Show cookies, Authorization values and token-like URL parameters in the
        log lines, flow comments and reports (hidden by default).""",
    )
    loader.add_option(
        "cors_helper", bool, True,
        """Run the CORS analysis in a helper process, off the proxy's request path
        (it falls back to mitmproxy's own process when the helper cannot run).""",
    )


def check_options(options, updated: set[str]) -> None:
    """OptionsError for a value the addon cannot work with (mitmproxy then keeps the
    previous one)."""
    if "cors_browser" in updated and options.cors_browser not in ENGINES:
        raise exceptions.OptionsError(
            f"cors_browser must be one of {', '.join(sorted(ENGINES))}, not {options.cors_browser!r}")
    if "cors_format" in updated and options.cors_format not in FORMATS:
        raise exceptions.OptionsError(f"cors_format must be one of {', '.join(FORMATS)}")
    if "cors_annotate" in updated and options.cors_annotate:
        if not options.cors_annotate.lower().endswith(".har"):
            raise exceptions.OptionsError("cors_annotate must name a .har file")
