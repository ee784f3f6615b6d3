"""``scripts/bench``: every benchmark, one command, a table of ratios against budgets.

Each benchmark is a ratio measured side by side in the same run (ours against a
baseline, interleaved repetitions, the median of the pairs; see
:mod:`benchlib.timing`), since absolute times on a shared machine are noisy;
absolute times, each pair's ratio and the machine are printed too.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

from benchlib.data import in_subprocess
from benchlib.timing import Pair, run_once, side_by_side, stolen

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPTS = os.path.join(ROOT, "scripts")
"""Where ``python -m benchlib.<module>`` finds the package."""
BUDGETS = {
    "live": 1.05,      # mitmdump -nr flows.mitm -s cors_addon.py / the same replay without it
    "har": 1.5,        # cors-audit big.har --format json / python -c json.load(...)
    "flat": 1.25,      # cost per exchange at the largest size / at 10k
    "memory_mib": 8.0,  # simulated live session: resident memory growth from 250k to 1M flows
    "speedup": 1.6,    # many files: --jobs 1 / --jobs 2 wall time, on 2 cores
}


def _bin(name: str) -> str:
    return os.path.join(os.path.dirname(sys.executable), name)


def _each(ratios: list[float]) -> str:
    return ", ".join(f"{r:.3f}" for r in ratios)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def bench_har(ds: dict, reps: int, warmup: bool = True) -> Pair:
    har = ds["har"]
    ours = [_bin("cors-audit"), har, "--format", "json"]
    base = [sys.executable, "-c", f"import json; json.load(open({har!r}))"]
    return side_by_side(f"har-{ds['meta']['exchanges']}", ours, base, reps=reps, cwd=ROOT, warmup=warmup)


def _into_page_cache(path: str) -> None:
    with open(path, "rb") as fh:
        while fh.read(1 << 24):
            pass


def _replay(ds: dict, *script: str) -> list[str]:
    return [_bin("mitmdump"), "-nr", ds["mitm"], *script]


def bench_live(ds: dict, reps: int, warmup: bool = True) -> Pair:
    """One replay at a time, interleaved. (Running ours and the baseline at once, one
    per core, left no core for the addon's helper process: the wall-time ratio then
    measured the contention for two cores, not the addon.) The 100k replay is not
    warmed up by a whole run of each, only by reading the file into the page cache."""
    ours, base = _replay(ds, "-s", os.path.join(ROOT, "cors_addon.py")), _replay(ds)
    _into_page_cache(ds["mitm"])
    return side_by_side(f"live-{ds['meta']['exchanges']}", ours, base, reps=reps, cwd=ROOT, warmup=warmup)


def checkout(rev: str, out: str) -> str:
    """The tree of ``rev`` (a commit of this repository), unpacked once under ``out``."""
    commit = subprocess.run(["git", "rev-parse", "--verify", rev + "^{commit}"], cwd=ROOT, capture_output=True,
                            text=True, check=True).stdout.strip()
    directory = os.path.join(out, "against", commit[:12])
    if not os.path.exists(os.path.join(directory, "cors_addon.py")):
        os.makedirs(directory, exist_ok=True)
        archive = subprocess.run(["git", "archive", commit], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", directory], input=archive, check=True)
    return directory


def bench_live_against(ds: dict, tree: str, reps: int, warmup: bool = True) -> Pair:
    """This tree's addon against another commit's, each run from its own tree and with
    it first on ``PYTHONPATH``, so that ``import cors_addon`` finds that tree's package,
    in the proxy and in its helper: a change to the live path measured side by side."""
    def replay(root: str) -> list[str]:
        return ["env", "-C", root, f"PYTHONPATH={root}", *_replay(ds, "-s", os.path.join(root, "cors_addon.py"))]

    _into_page_cache(ds["mitm"])
    return side_by_side(f"against-{ds['meta']['exchanges']}", replay(ROOT), replay(tree), reps=reps, cwd=ROOT,
                        warmup=warmup)


def bench_live_noise(ds: dict, reps: int) -> Pair:
    """The bare replay against itself, measured as the live ratio is: how far this
    machine moves a ratio that is 1 by construction."""
    bare = _replay(ds)
    _into_page_cache(ds["mitm"])
    return side_by_side(f"noise-{ds['meta']['exchanges']}", bare, bare, reps=reps, cwd=ROOT, warmup=False)


def bench_inproc(ds: dict) -> dict:
    out = subprocess.run([sys.executable, "-m", "benchlib.inproc", ds["har"]], capture_output=True, text=True,
                         cwd=SCRIPTS, check=True)
    return json.loads(out.stdout)


def bench_memory(flows: int, checkpoints: list[int]) -> list[dict]:
    proc = subprocess.run([sys.executable, "-m", "benchlib.memsim", str(flows), *map(str, checkpoints)],
                          capture_output=True, text=True, check=True,
                          cwd=SCRIPTS)
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def bench_many(directory: str, reps: int, warmup: bool = True) -> tuple[Pair, float]:
    """``cors-audit DIR`` (the default table report) with one process, then two."""
    base = [_bin("cors-audit"), directory, "--jobs", "1"]
    ours = [_bin("cors-audit"), directory, "--jobs", "2"]
    pair = side_by_side("many", ours, base, reps=reps, cwd=ROOT, warmup=warmup)
    default = run_once([_bin("cors-audit"), directory], cwd=ROOT)
    return pair, default.wall


def bench_dispatch(ds: dict, flows: int, rounds: int) -> dict:
    """Per-flow CPU time in mitmdump's own loop: bare, with the no-op script, with the
    addon (see :mod:`benchlib.dispatch`)."""
    proc = subprocess.run([sys.executable, "-m", "benchlib.dispatch", ds["mitm"], str(flows), str(rounds)],
                          capture_output=True, text=True, check=True,
                          cwd=SCRIPTS)
    return json.loads(proc.stdout.splitlines()[-1])


def machine() -> str:
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB, Python {platform.python_version()}, {platform.system()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks the machinery, not the budgets")
    parser.add_argument("--only", default="har,live,memory,many", help="comma-separated subset")
    parser.add_argument("--out", default=os.path.join(ROOT, "out", "bench"), help="where data and results go")
    parser.add_argument("--json", metavar="PATH", help="also write the results here")
    parser.add_argument("--against", metavar="REV",
                        help="with live: also measure this tree's addon against the one at commit REV")
    args = parser.parse_args(argv)
    only = set(args.only.split(","))
    if args.smoke:
        sizes, live_sizes, mem = [100, 300], [100], (4_000, [1_000, 2_000, 3_000, 4_000])
        many, reps, big_reps = (8, 30), 1, 1
    else:
        sizes, live_sizes, mem = [1000, 10_000, 100_000], [1000, 10_000, 100_000], (
            1_000_000, [100_000, 250_000, 500_000, 1_000_000])
        many, reps, big_reps = (1000, 100), 4, 6
    started, steal_at_start = time.monotonic(), stolen()
    log(f"scripts/bench on {machine()}")
    rows: list[tuple[str, str, str, str]] = []
    results: dict = {"machine": machine(), "smoke": args.smoke}
    datasets = {}
    for n in sorted(set(sizes) | set(live_sizes)):
        datasets[n] = in_subprocess(args.out, "dataset", n, mitm="live" in only and n in live_sizes)

    def verdict(value: float, budget: float, *, at_least: bool = False) -> str:
        ok = value >= budget if at_least else value <= budget
        return "PASS" if ok else ("FAIL" if not args.smoke else "fail (smoke)")

    if "har" in only:
        results["har"] = {}
        for n in sizes:
            log(f"HAR audit, {n:,} entries")
            pair = bench_har(datasets[n], reps if n < 100_000 else big_reps, warmup=not args.smoke)
            inproc = bench_inproc(datasets[n])
            results["har"][n] = {"ratio": pair.ratio, "cpu_ratio": pair.cpu_ratio, "ours_s": pair.ours_wall,
                                 "json_load_s": pair.base_wall, "ours_rss_mib": pair.ours_rss_mib,
                                 "json_load_rss_mib": pair.base_rss_mib, "har_mib": datasets[n]["meta"]["har_bytes"] / 2**20,
                                 "us_per_exchange": inproc["us_per_exchange"], "summary": inproc["summary"]}
            last = n == sizes[-1]
            rows.append((f"HAR audit {n:,} entries ({pair.ours_wall:.2f} s vs {pair.base_wall:.2f} s)",
                         f"{pair.ratio:.2f}x", "<= 1.50x" if last else "", verdict(pair.ratio, BUDGETS["har"]) if last else ""))
            rows.append((f"  peak memory: cors-audit {pair.ours_rss_mib:.0f} MiB, json.load {pair.base_rss_mib:.0f} MiB",
                         f"{pair.ours_rss_mib / pair.base_rss_mib:.2f}x", "", ""))
        costs = {n: results["har"][n]["us_per_exchange"]["total"] for n in sizes}
        for n in sizes:
            parts = results["har"][n]["us_per_exchange"]
            rows.append((f"  per exchange at {n:,}: read {parts['read']:.1f} + analyse {parts['analyse']:.1f} "
                         f"+ report {parts['report']:.1f} us", f"{parts['total']:.1f} us", "", ""))
        ref = sizes[1] if len(sizes) > 2 else sizes[0]
        flat = costs[sizes[-1]] / costs[ref]
        rows.append((f"  cost per exchange {sizes[-1]:,} / {ref:,} (linear: flat)", f"{flat:.2f}x", "<= 1.25x",
                     verdict(flat, BUDGETS["flat"])))
        results["flat"] = flat

    if "live" in only:
        results["live"] = {}
        for n in live_sizes:
            log(f"live replay, {n:,} flows")
            big = n >= 100_000
            pair = bench_live(datasets[n], big_reps if big else reps, warmup=not args.smoke and not big)
            results["live"][n] = {"ratio": pair.ratio, "cpu_ratio": pair.cpu_ratio, "ours_s": pair.ours_wall,
                                  "replay_s": pair.base_wall, "ours_rss_mib": pair.ours_rss_mib,
                                  "replay_rss_mib": pair.base_rss_mib, "pairs": pair.pair_ratios,
                                  "ours_runs_s": [r.wall for r in pair.ours],
                                  "replay_runs_s": [r.wall for r in pair.base], "steal_s": pair.steal}
            last = n == live_sizes[-1]
            rows.append((f"live mitmdump -nr {n:,} flows ({pair.ours_wall:.1f} s vs {pair.base_wall:.1f} s; "
                         f"pairs {_each(pair.pair_ratios)})",
                         f"{pair.ratio:.3f}x", "<= 1.05x" if last else "",
                         verdict(pair.ratio, BUDGETS["live"]) if last else ""))
            rows.append((f"  CPU time ratio; peak memory {pair.ours_rss_mib:.0f} MiB vs {pair.base_rss_mib:.0f} MiB; "
                         f"CPU time the hypervisor took meanwhile {pair.steal:.1f} s",
                         f"{pair.cpu_ratio:.3f}x", "", ""))

        if args.against:
            tree = checkout(args.against, args.out)
            results["against"] = {"rev": args.against}
            for n in live_sizes:
                log(f"live replay, {n:,} flows: this tree against {args.against}")
                big = n >= 100_000
                pair = bench_live_against(datasets[n], tree, big_reps if big else reps,
                                          warmup=not args.smoke and not big)
                results["against"][n] = {"ratio": pair.ratio, "cpu_ratio": pair.cpu_ratio, "ours_s": pair.ours_wall,
                                         "theirs_s": pair.base_wall, "pairs": pair.pair_ratios, "steal_s": pair.steal}
                rows.append((f"  this tree against {args.against}, {n:,} flows ({pair.ours_wall:.1f} s vs "
                             f"{pair.base_wall:.1f} s; pairs {_each(pair.pair_ratios)}; CPU time "
                             f"{pair.cpu_ratio:.3f}x)", f"{pair.ratio:.3f}x", "", ""))

        n = live_sizes[min(1, len(live_sizes) - 1)]
        log(f"noise: the bare replay against itself, {n:,} flows")
        noise = bench_live_noise(datasets[n], reps)
        results["live_noise"] = {"flows": n, "ratio": noise.ratio, "pairs": noise.pair_ratios, "steal_s": noise.steal}
        rows.append((f"  noise: the bare {n:,}-flow replay against itself, measured the same way "
                     f"(pairs {_each(noise.pair_ratios)}; hypervisor took {noise.steal:.1f} s)",
                     f"{noise.ratio:.3f}x", "", ""))
        flows, rounds = (50, 1) if args.smoke else (3000, 5)
        log(f"per-flow cost inside mitmdump, {flows:,} flows x {rounds} rounds")
        d = bench_dispatch(datasets[n], flows, rounds)
        results["live_dispatch"] = d
        replayed_us = results["live"][live_sizes[-1]]["replay_s"] / live_sizes[-1] * 1e6
        rows.append((f"  per flow in mitmdump's loop (least CPU of {rounds} rounds; bare {d['bare']:.0f} us): "
                     "any script, mitmproxy's dispatch (no-op script)", f"{d['noop'] - d['bare']:+.1f} us", "", ""))
        rows.append((f"  the addon's own cost in the proxy's process, over the no-op "
                     f"({(d['cors_addon'] - d['noop']) / replayed_us:.1%} of a replayed flow's {replayed_us:.0f} us)",
                     f"{d['cors_addon'] - d['noop']:+.1f} us", "", ""))

    if "memory" in only:
        total, checkpoints = mem
        log(f"simulated live session, {total:,} flows")
        base, *points = bench_memory(total, checkpoints)
        results["memory"] = {"driver_rss_mib": base["rss_mib"], "points": points}
        for p in points:
            p["addon_mib"] = p["rss_mib"] - base["rss_mib"]
            helper = f", helper {p['helper_rss_mib']:.0f}" if p.get("helper_rss_mib") else ""
            rows.append((f"  live session at {p['flows']:,} flows: addon {p['addon_mib']:.1f} MiB "
                         f"(resident {p['rss_mib']:.0f}{helper}, peak {p['peak_rss_mib']:.0f}; "
                         f"{p['state']['live_flows']} flows awaiting a verdict)", f"{p['addon_mib']:.1f} MiB", "", ""))
        ref = points[1] if len(points) > 1 else points[0]
        growth = points[-1]["rss_mib"] - ref["rss_mib"]
        rows.append((f"live session growth {ref['flows']:,} -> {points[-1]['flows']:,} flows (bounded: flat)",
                     f"{growth:+.1f} MiB", "<= 8 MiB", verdict(growth, BUDGETS["memory_mib"])))
        results["memory_growth_mib"] = growth

    if "many" in only:
        files, per = many
        directory = in_subprocess(args.out, "many", files, per)
        log(f"many files: {files:,} HARs, --jobs 1 vs --jobs 2")
        pair, default_wall = bench_many(directory, reps + 2 if not args.smoke else reps, warmup=not args.smoke)
        speedup = 1 / pair.ratio
        results["many"] = {"jobs1_s": pair.base_wall, "jobs2_s": pair.ours_wall, "speedup": speedup,
                           "default_jobs_s": default_wall}
        rows.append((f"{files:,} HARs: --jobs 1 {pair.base_wall:.1f} s, --jobs 2 {pair.ours_wall:.1f} s, "
                     f"default {default_wall:.1f} s", f"{speedup:.2f}x", ">= 1.60x",
                     verdict(speedup, BUDGETS["speedup"], at_least=True)))

    elapsed = time.monotonic() - started
    width = max(len(r[0]) for r in rows) if rows else 40
    print(f"\ncors-addon benchmarks on {machine()}")
    print(f"{'measure'.ljust(width)}  {'ratio':>9}  {'budget':>9}  result")
    for what, value, budget, result in rows:
        print(f"{what.ljust(width)}  {value:>9}  {budget:>9}  {result}")
    failed = [r for r in rows if r[3] == "FAIL"]
    steal = stolen() - steal_at_start
    print(f"\n{len([r for r in rows if r[3] == 'PASS'])} passed, {len(failed)} failed ({elapsed / 60:.1f} min; "
          f"the hypervisor took {steal:.0f} s of CPU time meanwhile, "
          f"{steal / (elapsed * (os.cpu_count() or 1)):.1%} of the cores: a contended host slows runs unevenly)")
    results["steal_s"] = steal
    results["rows"] = rows
    if args.json:
        with open(os.path.abspath(args.json), "w") as fh:
            json.dump(results, fh, indent=1, default=str)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
