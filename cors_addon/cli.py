"""``cors-audit``: audit saved recordings for blocked CORS flows and preflight cost.

Exit codes: 0 audited; 1 ``--fail-on`` matched; 2 usage error; 3 a recording could
not be read (the others are still audited); 4 an output could not be written.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from cors_addon import __version__
from cors_addon.analyzer import Report
from cors_addon.audit import analyze
from cors_addon.engines import ENGINES, get_engine
from cors_addon.errors import (
    EXIT_FINDINGS,
    EXIT_INPUT,
    EXIT_OK,
    EXIT_OUTPUT,
    RecordingError,
)
from cors_addon.sources.load import Recording, expand_paths, load_recording
from cors_addon.writers import FORMATS, format_for_path, render

FAIL_ON_WORDS = ("blocked", "redundant", "error", "warning", "info")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cors-audit",
        description="Explain blocked CORS requests and what preflights cost, from HAR "
        "(Chrome, Firefox, mitmproxy) or mitmproxy flow files.",
        epilog="Exit codes: 0 ok, 1 --fail-on matched, 2 usage error, 3 unreadable recording, "
        "4 output not written.",
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
    parser.add_argument("-q", "--quiet", action="store_true", help="no warnings about skipped entries")
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
    parser = build_parser()
    args = parser.parse_args(argv)
    fail_words = [w.strip() for w in args.fail_on.split(",") if w.strip()]
    if any(s < 0 for s in args.what_if_max_age):
        parser.error("--what-if-max-age takes a number of seconds >= 0")
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
    for path in paths:
        try:
            recording = load_recording(path)
        except RecordingError as exc:
            print(f"cors-audit: {exc}", file=sys.stderr)
            status = EXIT_INPUT
            continue
        if not args.quiet:
            for warning in recording.warnings:
                print(f"cors-audit: {path}: {warning}", file=sys.stderr)
        report = analyze(recording.exchanges, engine, pages=recording.pages, what_if=args.what_if_max_age)
        results.append((path, report, recording))

    if not results:
        return status

    text = render([(p, r) for p, r, _ in results], fmt)
    try:
        if args.output:
            with open(args.output, "w", encoding="utf-8") as fh:
                fh.write(text)
        else:
            sys.stdout.write(text)
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


def write_annotated(path: str, report: Report, recording: Recording) -> None:
    from cors_addon.writers.har_annotate import annotate_har, flows_to_har, write_har

    if recording.har is not None:
        har = annotate_har(recording.har, report)
    else:
        har = flows_to_har(recording.flows or [], report)
    write_har(path, har)


def run() -> None:
    try:
        code = main()
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:
        code = EXIT_OK
    sys.exit(code)


if __name__ == "__main__":
    run()
