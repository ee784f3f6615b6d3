"""``cors-audit``: audit saved recordings for blocked CORS flows and preflight cost.

Exit codes: 0 audited; 1 ``--fail-on`` matched; 2 usage error; 3 a recording could
not be read (the others are still audited); 4 an output could not be written; 70 an
internal error (one line, never a traceback; ``CORS_AUDIT_DEBUG=1`` shows it).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Sequence

from cors_addon import __version__
from cors_addon.engines import ENGINES, get_engine
from cors_addon.report import Report
from cors_addon.errors import (
    EXIT_FINDINGS,
    EXIT_INPUT,
    EXIT_INTERNAL,
    EXIT_OK,
    EXIT_OUTPUT,
    RecordingError,
    describe,
)
from cors_addon.batch import audit_all, default_jobs
from cors_addon.progress import MIN_EXCHANGES, MIN_FILES, Progress
from cors_addon.redact import redact_report
from cors_addon.sources.load import Recording, expand_paths
from cors_addon.writers import FORMATS, format_for_path, render_bytes

FAIL_ON_WORDS = ("blocked", "redundant", "error", "warning", "info")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cors-audit",
        description="Explain blocked CORS requests and what preflights cost, from HAR "
        "(Chrome, Firefox, mitmproxy) or mitmproxy flow files.",
        epilog="Compare two recordings: cors-audit diff BEFORE AFTER. "
        "Exit codes: 0 ok, 1 --fail-on matched, 2 usage error, 3 unreadable recording, "
        "4 output not written, 70 internal error.",
    )
    parser.add_argument("recordings", nargs="+", metavar="RECORDING",
                        help="HAR, .zhar, gzip'd HAR or mitmproxy .mitm file, or a directory of them")
    parser.add_argument("--format", choices=FORMATS, default=None,
                        help="report format (default: from --output's suffix, else table)")
    parser.add_argument("-o", "--output", metavar="PATH", help="write the report here instead of stdout")
    parser.add_argument("--annotate", metavar="OUT.har",
                        help="write the recording as HAR with a _cors object on every entry")
    parser.add_argument("--browser", choices=sorted(ENGINES), default="chromium",
                        help="engine profile for caps, Max-Age parsing and cache rules (default: chromium)")
    parser.add_argument("--fail-on", metavar="LIST", default="",
                        help="exit 1 when any of these occur: blocked, redundant, error, warning, info, "
                        "or finding ids (comma-separated)")
    parser.add_argument("--what-if-max-age", metavar="SECONDS", type=int, action="append", default=[],
                        help="also compute what this Access-Control-Max-Age would save "
                        "(repeatable; the engine's cap is always included)")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="no warnings about skipped entries, no progress bar")
    parser.add_argument("-j", "--jobs", type=int, metavar="N", default=None,
                        help="audit several recordings in N processes (default: one per core)")
    parser.add_argument("--show-secrets", action="store_true",
                        help="show cookies, tokens and secret query values in the report "
                        "(redacted by default; --annotate always keeps the recording whole)")
    parser.add_argument("--version", action="version", version=f"cors-audit {__version__}")
    return parser


def fail_on_matches(words: list[str], reports: list[Report]) -> list[str]:
    matched = []
    for word in words:
        for report in reports:
            s = report.summary
            hit = (
                (word == "blocked" and s["blocked"] > 0)
                or (word == "redundant" and s["redundant_preflights"] > 0)
                or (word in ("error", "warning", "info") and any(f["severity"] == word for f in report.findings))
                or any(f["id"] == word for f in report.findings)
            )
            if hit:
                matched.append(word)
                break
    return matched


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["diff"]:
        from cors_addon.diff import main as diff_main

        return diff_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    fail_words = [w.strip() for w in args.fail_on.split(",") if w.strip()]
    if any(s < 0 for s in args.what_if_max_age):
        parser.error("--what-if-max-age takes a number of seconds >= 0")
    if args.jobs is not None and args.jobs < 1:
        parser.error("--jobs takes a number of processes >= 1")
    engine = get_engine(args.browser)
    fmt = args.format or (format_for_path(args.output) if args.output else "table")

    status = EXIT_OK
    try:
        paths = expand_paths(args.recordings)
    except RecordingError as exc:
        print(f"cors-audit: {exc}", file=sys.stderr)
        return EXIT_INPUT
    if args.annotate and len(paths) != 1:
        parser.error("--annotate takes exactly one recording")

    results: list[tuple[str, Report, Recording]] = []
    shown: list[Report] = []
    bar = Progress("cors-audit:", enabled=not args.quiet)

    def progress(done: int, total: int) -> None:
        if len(paths) > 1 and len(paths) >= MIN_FILES:
            bar.update(done, total, " recordings")
        elif len(paths) == 1 and total >= MIN_EXCHANGES:
            bar.update(done, total, " exchanges")

    jobs = args.jobs if args.jobs is not None else default_jobs()
    for outcome in audit_all(paths, engine.name, args.what_if_max_age, jobs=jobs, keep_source=bool(args.annotate),
                             quiet=args.quiet, keep_exchanges=fmt == "html", progress=progress,
                             redact=not args.show_secrets and not args.annotate):
        if outcome.messages:
            bar.clear()
            for line in outcome.messages:
                print(line, file=sys.stderr)
        if outcome.status is not None:
            status = outcome.status
            continue
        results.append((outcome.path, outcome.report, outcome.recording))
        # Reports come redacted from where they were analysed (render() then finds them
        # so; --fail-on reads only numbers and ids, which redaction keeps), except for
        # --annotate, which writes the recording whole.
        shown.append(outcome.report if args.show_secrets else redact_report(outcome.report))
    bar.clear()

    if not results:
        return status

    if _fast_exit:
        _kept.append(results)  # freed by the process exit, not one object at a time (see _exit)
    data = render_bytes([(p, r) for (p, _, _), r in zip(results, shown)], fmt,
                        [rec.exchanges for _, _, rec in results], show_secrets=args.show_secrets)
    try:
        if args.output:
            with open(args.output, "wb") as fh:
                fh.write(data)
        else:
            _write_stdout(data)
        if args.annotate:
            write_annotated(args.annotate, results[0][1], results[0][2])
    except OSError as exc:
        print(f"cors-audit: {exc.filename or 'output'}: cannot write: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_OUTPUT

    matched = fail_on_matches(fail_words, [r for _, r, _ in results])
    if matched and status == EXIT_OK:
        print(f"cors-audit: failing on {', '.join(matched)}", file=sys.stderr)
        status = EXIT_FINDINGS
    return status


def _write_stdout(data: bytes) -> None:
    """UTF-8 bytes straight to a UTF-8 stdout (the usual case); any other encoding
    gets the text with what it cannot encode as backslash escapes."""
    out = sys.stdout
    buffer = getattr(out, "buffer", None)
    if buffer is not None and (out.encoding or "").lower().replace("-", "").replace("_", "") == "utf8":
        out.flush()
        buffer.write(data)
        buffer.flush()
        return
    encoding = out.encoding or "utf-8"
    text = data.decode("utf-8")
    out.write(text if text.isascii() else text.encode(encoding, "backslashreplace").decode(encoding))


def write_annotated(path: str, report: Report, recording: Recording) -> None:
    from cors_addon.writers.har_annotate import annotate_har, flows_to_har, write_har

    if recording.har is not None:
        har = annotate_har(recording.har, report)
    else:
        har = flows_to_har(recording.flows or [], report)
    write_har(path, har)


_fast_exit = False
_kept: list = []


def run() -> None:
    # One audit allocates millions of long-lived objects (exchanges, headers, results)
    # and makes almost no reference cycles: the cyclic collector would only walk them
    # again and again (a third of the time on a 100k-entry HAR). Measured in scripts/bench.
    global _fast_exit
    gc.disable()
    _fast_exit = True
    try:
        code = main()
        sys.stdout.flush()
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:
        code = EXIT_OK
    except Exception as exc:  # never a traceback: one line, and the documented code
        if os.environ.get("CORS_AUDIT_DEBUG"):
            raise
        print(f"cors-audit: internal error ({describe(exc)}); please report it "
              "(CORS_AUDIT_DEBUG=1 shows the traceback)", file=sys.stderr)
        code = EXIT_INTERNAL
    _exit(code)


def _exit(code: int) -> None:
    """Leave without freeing, one by one, the objects the audit built (most of a second
    for 100,000 HAR entries), as mypy does: every output is written and flushed first."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


if __name__ == "__main__":
    run()
