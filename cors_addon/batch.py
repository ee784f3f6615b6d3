"""Audit many recordings, on every core: ``cors-audit dir/ --jobs N``.

Each recording is read and analysed on its own (the analysis of one never depends on
another), so several go to a pool of worker processes. Results, warnings and errors
come back in the order the recordings were named, exactly as the sequential path
prints them, so the report and the exit code do not depend on ``--jobs``.
"""

from __future__ import annotations

import dataclasses
import gc
import operator
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial

from cors_addon.audit import analyze
from cors_addon.engines import get_engine
from cors_addon.errors import EXIT_INPUT, EXIT_INTERNAL, RecordingError, describe
from cors_addon.report import Report
from cors_addon.sources.load import Recording, load_recording


@dataclass(slots=True)
class Outcome:
    path: str
    messages: list[str] = field(default_factory=list)
    """Lines for stderr, in the order the sequential audit prints them."""
    status: int | None = None
    """``EXIT_INPUT`` or ``EXIT_INTERNAL`` when the recording gave no report."""
    report: Report | None = None
    recording: Recording | None = None


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def audit_one(path: str, browser: str, what_if: Sequence[int], *, keep_source: bool, quiet: bool,
              keep_exchanges: bool = True, progress: Callable[[int, int], None] | None = None, redact: bool = False) -> Outcome:
    """Read and analyse one recording. ``keep_exchanges=False`` drops what only the
    HTML report reads, so a worker sends back the report and not every header.
    ``redact``: hand back the report as the writers show it (``redact_report``; its
    numbers, ids and verdicts are the same), so that a worker does that work too."""
    try:
        recording = load_recording(path, keep_source=keep_source)
    except RecordingError as exc:
        return Outcome(path, [f"cors-audit: {exc}"], EXIT_INPUT)
    out = Outcome(path, [] if quiet else [f"cors-audit: {path}: {w}" for w in recording.warnings])
    total = len(recording.exchanges)
    try:
        report = analyze(recording.exchanges, get_engine(browser), pages=recording.pages, what_if=what_if,
                         progress=(lambda done: progress(done, total)) if progress else None)
    except Exception as exc:  # an engine bug: say so in one line, audit the others
        out.messages.append(f"cors-audit: {path}: internal error while analysing ({describe(exc)}); "
                            "please report it with this recording")
        out.status = EXIT_INTERNAL
        return out
    if not keep_exchanges:
        recording.exchanges = []
        recording.flows = None
        recording.har = None
    if redact:
        from cors_addon.redact import redact_report

        report = redact_report(report)
    out.report, out.recording = report, recording
    return out


def _worker_init() -> None:
    gc.disable()  # as in cli.run: an audit makes almost no reference cycles


def _packed(path: str, **kwargs) -> Outcome:
    """``audit_one`` in a worker, its flow results sent as plain tuples: pickling a
    slots dataclass goes through Python code field by field, a tuple does not (this
    was most of the cost of sending 100,000 results back)."""
    out = audit_one(path, **kwargs)
    report = out.report
    if report is not None and report.flows:
        cls = type(report.flows[0])
        fields = dataclasses.fields(cls)
        if all(f.init for f in fields) and all(type(f) is cls for f in report.flows):
            names = [f.name for f in fields]
            get = operator.attrgetter(*names)
            report.flows = _Flows(cls, [get(f) for f in report.flows])
    return out


class _Flows(list):
    """Flow results as tuples, on their way from a worker (see :func:`_packed`)."""

    def __init__(self, cls: type, rows: list) -> None:
        super().__init__(rows)
        self.cls = cls

    def __reduce__(self):
        return (_Flows, (self.cls, list(self)))

    def unpack(self) -> list:
        cls = self.cls
        return [cls(*row) for row in self]


def audit_all(paths: Sequence[str], browser: str, what_if: Sequence[int], *, jobs: int, keep_source: bool,
              quiet: bool, keep_exchanges: bool, progress: Callable[[int, int], None] | None = None, redact: bool = False) -> Iterator[Outcome]:
    """Outcomes in the order of ``paths``; with ``jobs > 1`` and several recordings,
    computed by a pool of ``jobs`` processes. ``progress(done, total)`` is called with
    exchanges analysed for a single recording, with recordings done for several."""
    if jobs <= 1 or len(paths) < 2:
        for i, path in enumerate(paths):
            one = progress if len(paths) == 1 else None
            yield audit_one(path, browser, what_if, keep_source=keep_source, quiet=quiet, progress=one,
                            redact=redact)
            if progress and len(paths) > 1:
                progress(i + 1, len(paths))
        return
    work = partial(_packed, browser=browser, what_if=list(what_if), keep_source=keep_source, quiet=quiet,
                   keep_exchanges=keep_exchanges, redact=redact)
    chunk = max(1, min(8, len(paths) // (jobs * 8)))
    with ProcessPoolExecutor(max_workers=min(jobs, len(paths)), initializer=_worker_init) as pool:
        for i, outcome in enumerate(pool.map(work, paths, chunksize=chunk)):
            if outcome.report is not None and isinstance(outcome.report.flows, _Flows):
                outcome.report.flows = outcome.report.flows.unpack()
            yield outcome
            if progress:
                progress(i + 1, len(paths))
