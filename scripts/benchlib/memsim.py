"""A long live session, in process: mitmproxy flows through the addon's hooks.

``python -m benchlib.memsim FLOWS CHECKPOINT...`` drives :class:`CorsAddon` (default
options: no per-flow report asked for, the analysis in its helper process; with
``--in-process`` in this one) with real ``mitmproxy.http.HTTPFlow`` objects
made from the synthetic traffic. Building a million flows would cost more than
analysing them, so a pool of ``POOL`` flows (about a thousand page loads) is made once
and replayed again and again, each round with new flow ids, fresh metadata and its
times shifted past the previous round: to the addon it is one session that never
ends. The pool is a constant on the driver's side. At each checkpoint it prints one
JSON line: resident memory after a collection (this process plus the helper), the
peak so far, and the size of every container of the addon's state that this process
can see (all of it with ``--in-process``).
"""

from __future__ import annotations

import gc
import json
import logging
import resource
import sys
import time
from urllib.parse import urlsplit


POOL = 20_000


def _rss_mib(pid: int | str = "self") -> float:
    with open(f"/proc/{pid}/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def _peak_mib(pid: int | str = "self") -> float:
    with open(f"/proc/{pid}/status") as fh:
        kib = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))
    return kib / 1024


def _state(addon) -> dict:
    session = getattr(addon.backend, "session", None)
    helper = getattr(addon.backend, "helper", None)
    if session is None:
        return {"live_flows": len(addon._live),
                "journal_frames": len(helper.journal.frames) if helper else None,
                "journal_bytes": helper.journal.size if helper else None}
    a = session.analyzer
    return {
        "live_flows": len(addon._live),
        "logged": len(session._logged),
        "begun": len(session._begun),
        "pages": len(a.pages.pages),
        "page_urls": len(a.pages._by_url),
        "pending_preflights": sum(len(v) for v in a.pairing.pending.values()),
        "pending_order": len(a.pairing.order),
        "paired": len(a.pairing.paired),
        "recent": len(a.redundancy._recent),
        "templates": len(a.redundancy._templates),
        "cache_keys": len(a.cache),
        "answer_keys": len(a.redundancy.answers),
        "findings": len(a.findings),
        "finding_flow_ids": sum(len(f.flows) for f in a.findings.values()),
        "kept_results": len(a.flows),
    }


def _flow(ex, client, server):
    from mitmproxy import http

    parts = urlsplit(ex.url)
    path = parts.path + ("?" + parts.query if parts.query else "")
    req = http.Request(
        parts.hostname, 443, ex.method.encode(), b"https", parts.netloc.encode(), path.encode(), b"HTTP/2.0",
        http.Headers([(k.encode(), v.encode()) for k, v in ex.req_headers]), ex.req_body, None,
        ex.wire, ex.wire + 0.0005,
    )
    resp = http.Response(
        b"HTTP/2.0", ex.status, b"", http.Headers([(k.encode(), v.encode()) for k, v in ex.resp_headers]),
        ex.resp_body, None, max(ex.ended - 0.002, ex.wire + 0.0005), ex.ended,
    )
    f = http.HTTPFlow(client, server)
    f.request, f.response = req, resp
    return f


def main(total: int, checkpoints: list[int], in_process: bool = False) -> None:
    from mitmproxy.test import taddons, tflow

    from benchlib.traffic import stream
    from cors_addon.addon import CorsAddon

    log = logging.getLogger("cors_addon.addon")
    log.addHandler(logging.NullHandler())
    log.propagate = False
    addon = CorsAddon()
    client, server = tflow.tclient_conn(), tflow.tserver_conn()
    pool = []
    for batch in stream():
        pool.extend(_flow(ex, client, server) for ex in batch)
        if len(pool) >= min(POOL, total):
            break
    times = [(f.request.timestamp_start, f.request.timestamp_end, f.response.timestamp_start,
              f.response.timestamp_end) for f in pool]
    period = max(t[3] for t in times) - min(t[0] for t in times) + 60.0
    done, marks, round_ = 0, sorted(checkpoints), 0
    with taddons.context(addon) as tctx:
        tctx.configure(addon, cors_helper=not in_process)
        gc.collect()
        print(json.dumps({"flows": 0, "rss_mib": round(_rss_mib(), 1), "pool": len(pool)}), flush=True)
        start = time.process_time()
        while True:
            shift = round_ * period
            for i, f in enumerate(pool):
                f.id = f"{round_}-{i}"
                f.metadata = {}
                f.marked, f.comment = "", ""
                t0, t1, t2, t3 = times[i]
                f.request.timestamp_start, f.request.timestamp_end = t0 + shift, t1 + shift
                f.response.timestamp_start, f.response.timestamp_end = t2 + shift, t3 + shift
                addon.request(f)
                addon.response(f)
                done += 1
                if marks and done == marks[0]:
                    marks.pop(0)
                    addon.sync()
                    gc.collect()
                    helper = getattr(getattr(addon.backend, "helper", None), "pid", None)
                    print(json.dumps({
                        "flows": done, "rss_mib": round(_rss_mib() + (_rss_mib(helper) if helper else 0), 1),
                        "helper_rss_mib": round(_rss_mib(helper), 1) if helper else None,
                        "peak_rss_mib": round(_peak_mib() + (_peak_mib(helper) if helper else 0), 1),
                        "cpu_s": round(time.process_time() - start, 1), "state": _state(addon),
                    }), flush=True)
                if done >= total:
                    addon.done()
                    return
            round_ += 1


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--in-process"]
    main(int(args[0]), [int(x) for x in args[1:]], in_process="--in-process" in sys.argv)
