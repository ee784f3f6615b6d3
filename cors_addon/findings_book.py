"""The findings a session has earned so far, counted by id and scope, each with a
bounded list of the flows that show it."""

from __future__ import annotations

from collections.abc import Iterable

from cors_addon.results import FindingTally, FlowResult

MAX_FLOWS_PER_FINDING = 200
"""Flow ids a finding lists (its count goes on): enough to find examples, bounded in a
session of any length."""


class FindingsBook:
    def __init__(self) -> None:
        self.tallies: dict[tuple[str, str], FindingTally] = {}

    def record(self, fid: str, scope: str, result: FlowResult, extra_flows: Iterable[str] = ()) -> FindingTally:
        """Count finding ``fid`` in ``scope`` for ``result`` (and name it on the result);
        ``extra_flows``: earlier flows that belong to it too."""
        key = (fid, scope)
        f = self.tallies.get(key)
        if f is None:
            f = self.tallies[key] = FindingTally(fid, scope)
        f.count += 1
        if result.origin:
            f.origins.add(result.origin)
        for flow_id in (*extra_flows, result.id):
            if len(f.flows) < MAX_FLOWS_PER_FINDING and flow_id not in f.flows:
                f.flows.append(flow_id)
        if fid not in result.findings:
            result.findings.append(fid)
        return f
