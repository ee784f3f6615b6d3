"""What a script addon costs each flow inside mitmdump, measured without the noise of
whole replays: the live ratio's explanation.

Run as ``python -m benchlib.dispatch FLOWS.mitm N ROUNDS``; prints one JSON object.
One mitmdump master (``DumpMaster``, its dumper writing to /dev/null) runs in this
process; the flows are read once, and each round replays fresh copies of them through
mitmproxy's own ``load_flow`` with no script, with the no-op script, and with
``cors_addon.py`` (configurations rotated). Each flow is dropped once loaded, as
mitmdump drops it. The figures are the least CPU time per flow of any round (noise
only ever adds), so they separate what mitmproxy spends on dispatching to any script
from what the addon adds, to a microsecond or two, where the wall-time ratio of two
100k replays moves by a few percent from run to run.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CONFIGS = {
    "bare": None,
    "noop": os.path.join(HERE, "noop_addon.py"),
    "cors_addon": os.path.join(ROOT, "cors_addon.py"),
}


async def _measure(path: str, n: int, rounds: int) -> dict:
    from mitmproxy import io, options
    from mitmproxy.tools.dump import DumpMaster

    master = DumpMaster(options.Options(), with_termlog=False)
    master.options.update(server=False)
    await master.running()
    with open(path, "rb") as fh:
        flows = [f for f, _ in zip(io.FlowReader(fh).stream(), range(n))]
    loader = master.addons.get("scriptloader")
    cpu: dict[str, list[float]] = {name: [] for name in CONFIGS}
    for _ in range(rounds):
        for name, script in CONFIGS.items():
            master.options.update(scripts=[script] if script else [])
            while any(s.ns is None for s in loader.addons):  # scripts load on the event loop
                await asyncio.sleep(0.01)
            if name == "cors_addon" and master.addons.get("cors") is None:
                raise RuntimeError(f"{script} did not load")
            copies = [f.copy() for f in reversed(flows)]
            gc.collect()
            start = time.process_time()
            while copies:
                await master.load_flow(copies.pop())
            cpu[name].append((time.process_time() - start) / len(flows) * 1e6)
            master.options.update(scripts=[])  # the addon's done: its helper finishes and exits
    return {name: min(values) for name, values in cpu.items()} | {"flows": len(flows), "rounds": rounds}


def main(path: str, n: int, rounds: int) -> None:
    out = sys.stdout
    sys.stdout = open(os.devnull, "w")  # the dumper's lines
    result = asyncio.run(_measure(path, n, rounds))
    out.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
