"""Per-exchange cost of each stage of ``cors-audit``, in one process (CPU time).

Run as ``python -m benchlib.inproc HAR`` (a fresh process per size, so sizes do not
share a heap); prints one JSON object.
"""

from __future__ import annotations

import gc
import json
import sys
import time


def main(path: str) -> None:
    gc.disable()  # as cors-audit does
    from cors_addon.audit import analyze
    from cors_addon.engines import get_engine
    from cors_addon.sources.load import load_recording
    from cors_addon.writers import render

    clock = time.process_time
    t0 = clock()
    rec = load_recording(path, keep_source=False)
    t1 = clock()
    report = analyze(rec.exchanges, get_engine("chromium"), pages=rec.pages)
    t2 = clock()
    text = render([(path, report)], "json")
    t3 = clock()
    n = len(rec.exchanges)
    print(json.dumps({
        "exchanges": n, "read_s": t1 - t0, "analyse_s": t2 - t1, "report_s": t3 - t2,
        "us_per_exchange": {"read": 1e6 * (t1 - t0) / n, "analyse": 1e6 * (t2 - t1) / n,
                            "report": 1e6 * (t3 - t2) / n, "total": 1e6 * (t3 - t0) / n},
        "report_bytes": len(text),
        "summary": report.summary,
    }))


if __name__ == "__main__":
    main(sys.argv[1])
