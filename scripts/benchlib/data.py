"""Generated recordings, cached under out/bench/data/ (gitignored) by size and version."""

from __future__ import annotations

import json
import os
import statistics

from benchlib.render import har_entry, write_har, write_mitm
from benchlib.traffic import GENERATOR_VERSION, SEED, Session, generate


def dataset(root: str, n: int, *, mitm: bool = True, log=print) -> dict:
    """``{"har": path, "mitm": path, "meta": {...}}`` for ``n`` exchanges, made once."""
    d = os.path.join(os.path.abspath(root), "data", f"v{GENERATOR_VERSION}-s{SEED}-{n}")
    meta_path = os.path.join(d, "meta.json")
    meta = {}
    if os.path.exists(meta_path):
        with open(meta_path) as fh:
            meta = json.load(fh)
    os.makedirs(d, exist_ok=True)
    har, mitm_path = os.path.join(d, "flows.har"), os.path.join(d, "flows.mitm")
    session: Session | None = None
    if not os.path.exists(har) or "har_bytes" not in meta:
        log(f"  generating {n:,} exchanges (HAR)")
        session = generate(n)
        meta.update(describe(session))
        meta["har_bytes"] = write_har(session, har)
    if mitm and (not os.path.exists(mitm_path) or "mitm_bytes" not in meta):
        log(f"  generating {n:,} exchanges (.mitm)")
        session = session or generate(n)
        meta["mitm_bytes"] = write_mitm(session, mitm_path)
    with open(meta_path, "w") as fh:
        json.dump(meta, fh, indent=1)
    return {"har": har, "mitm": mitm_path, "meta": meta, "dir": d}


def describe(session: Session) -> dict:
    sample = session.exchanges[:: max(1, len(session.exchanges) // 2000)]
    return {
        "exchanges": len(session.exchanges),
        "pages": len(session.pages),
        "by_type": session.counts(),
        "median_entry_bytes": int(statistics.median(len(json.dumps(har_entry(e))) for e in sample)),
    }


def many_hars(root: str, files: int, per_file: int, log=print) -> str:
    """A directory of ``files`` HARs, each a different session of ``per_file`` exchanges."""
    d = os.path.join(os.path.abspath(root), "data", f"v{GENERATOR_VERSION}-many-{files}x{per_file}")
    done = os.path.join(d, ".complete")
    if os.path.exists(done):
        return d
    log(f"  generating {files:,} HARs of {per_file} exchanges")
    os.makedirs(d, exist_ok=True)
    for i in range(files):
        write_har(generate(per_file, seed=SEED + 1 + i), os.path.join(d, f"session-{i:04d}.har"))
    open(done, "w").close()
    return d


def in_subprocess(root: str, what: str, *args: int, mitm: bool = True) -> dict | str:
    """Generate in a child process, so that the runner stays small: a child forked from
    a big runner would start with the runner's pages counted in its peak RSS."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "benchlib.data", root, what, *map(str, args)] + ([] if mitm else ["--no-mitm"])
    out = subprocess.run(cmd, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                         stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(out.stdout)


if __name__ == "__main__":
    import sys

    def _log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    root, what, *rest = sys.argv[1:]
    numbers = [int(x) for x in rest if not x.startswith("--")]
    if what == "dataset":
        print(json.dumps(dataset(root, numbers[0], mitm="--no-mitm" not in rest, log=_log)))
    else:
        print(json.dumps(many_hars(root, numbers[0], numbers[1], log=_log)))
