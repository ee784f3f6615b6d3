"""The scenario page: HTML with inline JS that runs one page load's steps with fetch().

Outcomes go to `/report` on the page origin (same origin, so no CORS of its own). fetch()
rejects with a TypeError on any network error, which is how a CORS failure surfaces to
script (Fetch: "return a network error"); the reason is never visible to the page, so the
page can only say ok/blocked. t0/t1 (Date.now(), same clock as the server's log) bracket
each fetch so server-side requests can be attributed to steps.
"""

from __future__ import annotations

import html
import json

from .scenarios import Scenario

_RUNNER = """
const S = %s;
const sleep = ms => new Promise(r => setTimeout(r, ms));
async function one(s) {
  if (s.delay_ms) await sleep(s.delay_ms);
  const init = {method: s.method, mode: 'cors', credentials: s.credentials, cache: s.cache};
  if (s.headers.length) { const h = new Headers(); for (const [k, v] of s.headers) h.append(k, v); init.headers = h; }
  if (s.body !== null) init.body = s.body;
  const r = {scenario: S.scenario, page: S.page, id: s.id, t0: Date.now()};
  try {
    const res = await fetch(s.url, init);
    await res.text();
    Object.assign(r, {outcome: 'ok', status: res.status, final_url: res.url});
  } catch (e) {
    Object.assign(r, {outcome: 'blocked', status: null, error: String(e)});
  }
  r.t1 = Date.now();
  await fetch('/report', {method: 'POST', body: JSON.stringify(r)});
}
(async () => {
  const groups = [];
  for (const s of S.steps) {
    const g = groups[groups.length - 1];
    if (s.parallel && g && g.key === s.parallel) g.items.push(s); else groups.push({key: s.parallel, items: [s]});
  }
  for (const g of groups) await Promise.all(g.items.map(one));
  await fetch('/done?scenario=' + S.scenario + '&page=' + S.page, {method: 'POST'});
  document.title = 'done';
  if (S.next) location.href = S.next;
})();
"""


def step_url(scn: Scenario, step, origins: dict[str, str]) -> str:
    return origins[step.api] + scn.step_path(step) + step.query


def render(scn: Scenario, page: int, origins: dict[str, str], next_url: str | None) -> bytes:
    steps = [
        {
            "id": s.id, "url": step_url(scn, s, origins), "method": s.method,
            "headers": [list(h) for h in s.request_headers()], "body": s.body,
            "credentials": s.credentials, "cache": s.cache, "delay_ms": s.delay_ms,
            "parallel": s.parallel,
        }
        for s in scn.steps if s.page == page
    ]
    data = {"scenario": scn.name, "page": page, "steps": steps, "next": next_url}
    script = _RUNNER % json.dumps(data).replace("</", "<\\/")
    doc = f"<!doctype html><meta charset=utf-8><title>{html.escape(scn.name)}</title><link rel=icon href=data:,><script>{script}</script>"
    return doc.encode()
