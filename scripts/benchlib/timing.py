"""Side-by-side timing: ours and the baseline, interleaved, ratios of pairs.

Absolute times are noisy on a shared machine, so each repetition runs the two
commands back to back and the ratio of that pair is kept. Which goes first
alternates, and the reported ratio is the median of the pairs (for an even number,
the mean of the middle two). Two kinds of noise decide that. This machine's speed
drifts over minutes, which favours whichever command of a two-minute pair runs
second: with as many pairs of each order, the middle two of pairs that agree are one
of each order, and the drift cancels (a median of an odd number of pairs kept one
order's bias). And now and then a slow spell lands on one run of a pair: in one
series of 100k-flow replays, three pairs gave 0.992, 1.003 and 0.982 and the fourth
1.57 (218 s against 139 s); the geometric mean of the four, the estimator before
this one, carried a quarter of that spell into the result (1.11), the median ignores
it. Each child's peak RSS and CPU time come from ``wait4``, per process, not from
the whole process tree of the run. The time the hypervisor gave to other machines
while a run ran (``steal`` in ``/proc/stat``) is kept with it: it shows a contended
host, which slows every run, and unevenly.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from dataclasses import dataclass, field


@dataclass(slots=True)
class Run:
    wall: float
    cpu: float
    max_rss_kib: int
    code: int
    steal: float = 0.0
    """Seconds of this machine's CPUs taken by the hypervisor during the run."""


@dataclass(slots=True)
class Pair:
    name: str
    ours: list[Run] = field(default_factory=list)
    base: list[Run] = field(default_factory=list)

    @property
    def pair_ratios(self) -> list[float]:
        return [o.wall / b.wall for o, b in zip(self.ours, self.base)]

    @property
    def ratio(self) -> float:
        return statistics.median(self.pair_ratios)

    @property
    def cpu_ratio(self) -> float:
        return statistics.median(o.cpu / b.cpu for o, b in zip(self.ours, self.base))

    @property
    def steal(self) -> float:
        return sum(r.steal for r in self.ours + self.base)

    @property
    def ours_wall(self) -> float:
        return statistics.median(r.wall for r in self.ours)

    @property
    def base_wall(self) -> float:
        return statistics.median(r.wall for r in self.base)

    @property
    def ours_rss_mib(self) -> float:
        return max(r.max_rss_kib for r in self.ours) / 1024

    @property
    def base_rss_mib(self) -> float:
        return max(r.max_rss_kib for r in self.base) / 1024


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def stolen() -> float:
    """Seconds the hypervisor has taken from this machine's CPUs since boot (0 where
    there is no ``/proc/stat`` or no steal column)."""
    try:
        with open("/proc/stat") as fh:
            fields = fh.readline().split()
        return int(fields[8]) / _TICKS if fields[0] == "cpu" and len(fields) > 8 else 0.0
    except (OSError, ValueError):
        return 0.0


def run_once(cmd: list[str], *, cwd: str | None = None, env: dict | None = None,
             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) -> Run:
    steal = stolen()
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, proc.returncode, stolen() - steal)


def side_by_side(name: str, ours: list[str], base: list[str], *, reps: int, cwd: str | None = None,
                 env: dict | None = None, ok_codes: tuple[int, ...] = (0,), warmup: bool = True) -> Pair:
    """``reps`` interleaved pairs (ours first, then the baseline first, ...: an even
    ``reps`` has as many of each order). A warm-up run of each first puts the input in
    the page cache for both."""
    pair = Pair(name)
    if warmup:
        run_once(base, cwd=cwd, env=env)
        run_once(ours, cwd=cwd, env=env)
    for i in range(reps):
        order = [("ours", ours), ("base", base)] if i % 2 == 0 else [("base", base), ("ours", ours)]
        for which, cmd in order:
            r = run_once(cmd, cwd=cwd, env=env)
            if which == "ours" and r.code not in ok_codes:
                raise RuntimeError(f"{name}: {' '.join(cmd)} exited {r.code}")
            (pair.ours if which == "ours" else pair.base).append(r)
    return pair
