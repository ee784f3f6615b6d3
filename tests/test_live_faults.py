"""The failure policy (``cors_addon/live_backend.py``), proved with real processes and
real signals: whatever happens to mitmdump's exit or to the processes it started, the
report counts every exchange the proxy served, mitmdump exits within seconds and
cleanly, and a helper that stops never stops the proxy.

Each scenario sends at least ``REQUESTS`` browser-shaped requests from ``THREADS``
client threads through a real mitmdump to a loopback origin server
(``tests/live_load.py``), then compares the report's totals with what was sent. The
control scenario is what makes the others mean something: with no fault, the report
says exactly what :func:`~tests.live_load.expected_summary` computes.

Each test prints its figures (report against sent, exit time, slowest response):
``pytest -rA tests/test_live_faults.py`` shows them.
"""

from __future__ import annotations

import signal
import time

import pytest

from tests.live_load import (LoadClient, MitmdumpRun, Totals, calls_for, expected_summary,
                             serve_origin)

THREADS = 8
REQUESTS = 3000
"""At least this many requests per scenario (whole cycles of calls: 3,080)."""
EXIT_SECONDS = 5.0
"""The longest mitmdump may take to exit after the final signal."""
STOP_WAIT_SECONDS = 20.0
"""How long a test waits for an exit before it kills mitmdump (the figure is then
"did not exit"): long enough to measure a slow exit, short enough for the file."""
STALL_SECONDS = 10.0
"""How long the helper stays stopped (SIGSTOP) while traffic flows."""
STALL_TRAFFIC_SECONDS = 18.0
"""The stall scenario's traffic is paced over this long, so that the client is still
sending when the helper is continued, however fast the proxy is."""
SLOWEST_DURING_STALL = 1.0
SETTLE_SECONDS = 1.0
"""The control waits this long after the last response before its SIGINT, so that it
proves the expectations without depending on what the exit does with work in flight."""


@pytest.fixture
def api():
    with serve_origin() as base_url:
        yield base_url


@pytest.fixture
def mitmdump(tmp_path, request):
    """The proxy; a test's ``extra`` parameter adds a script loaded after the addon."""
    extra = getattr(request, "param", None)
    args: tuple[str, ...] = ()
    if extra:
        script = tmp_path / "extra_addon.py"
        script.write_text(extra)
        args = ("-s", str(script))
    run = MitmdumpRun(tmp_path, *args)
    try:
        yield run.wait_ready()
    finally:
        run.cleanup()


A_HELPER_QUICK_TO_GIVE_UP = '''
"""Test-only: a pipe of one page and one second of patience, so that a stopped helper
is taken back within the stall instead of catching up after it."""
from cors_addon import live_helper

live_helper.PIPE_SIZE = 4096
live_helper.STALL_SECONDS = 1.0
'''


def load(run: MitmdumpRun, api: str, **pacing) -> LoadClient:
    return LoadClient(run.port, api, threads=THREADS, calls_per_thread=calls_for(REQUESTS, THREADS), **pacing)


def policy_violations(run: MitmdumpRun, client: LoadClient, exit_status: int | None) -> list[str]:
    """What the run did that the failure policy forbids, as lines for the assertion
    message; printed with the run's figures."""
    problems = []
    failed = client.failures()
    if failed:
        problems.append(f"{len(failed)} of {len(client.sent)} requests failed, the first: {failed[0]}")
    if run.exit_seconds is None:
        problems.append(f"mitmdump did not exit within {STOP_WAIT_SECONDS:.0f} s of the signal")
    elif run.exit_seconds > EXIT_SECONDS:
        problems.append(f"mitmdump took {run.exit_seconds:.1f} s to exit (at most {EXIT_SECONDS:.0f} s)")
    if exit_status != 0:
        problems.append(f"mitmdump's exit status was {exit_status}, not 0")
    output = run.output()
    if "Traceback" in output:
        at = output.rfind("\n", 0, output.index("Traceback")) + 1
        problems.append("mitmdump's output has a traceback:\n" + output[at:at + 1500])
    sent = expected_summary(client.completed_calls)
    report = run.report()
    if report is None:
        problems.append("no report was written")
    else:
        got = Totals.of_report(report["summary"])
        if got != sent:
            problems.append(f"the report says {got.describe()}\n          sent was {sent.describe()}")
        unrecorded = sum(f["count"] for f in report["findings"] if f["id"] == "preflight-not-recorded")
        if unrecorded:
            problems.append(f"{unrecorded} preflight-not-recorded findings (every preflight was recorded)")
    print(figures(run, client, exit_status, report, sent))
    return problems


def figures(run: MitmdumpRun, client: LoadClient, exit_status: int | None, report: dict | None,
            sent: Totals) -> str:
    """The run in three lines: what was sent, what the report says, how it ended."""
    got = Totals.of_report(report["summary"]).describe() if report else "none written"
    exit_time = "did not exit" if run.exit_seconds is None else f"exited after {run.exit_seconds:.2f} s"
    slowest = client.slowest(client.sent)
    slowest_ms = f"{slowest.latency * 1000:.0f} ms" if slowest else "none"
    return (f"  sent:    {sent.describe()}\n"
            f"  report:  {got}\n"
            f"  exit:    status {exit_status}, {exit_time}; slowest response of the run {slowest_ms}")


def assert_policy_held(run: MitmdumpRun, client: LoadClient, exit_status: int | None) -> None:
    problems = policy_violations(run, client, exit_status)
    assert not problems, "\n".join(problems)


# -- the scenarios -------------------------------------------------------------------------


def test_control_without_a_fault_the_report_counts_exactly_what_was_sent(mitmdump, api):
    """No fault, and a SIGINT once everything has settled: the report must equal
    the expectations, or the other scenarios prove nothing."""
    client = load(mitmdump, api).start()
    client.join()
    time.sleep(SETTLE_SECONDS)
    assert_policy_held(mitmdump, client, mitmdump.stop(signal.SIGINT))


@pytest.mark.parametrize(("stop_signal", "to_group"), [
    pytest.param(signal.SIGINT, True, id="ctrl-c-to-the-process-group"),
    pytest.param(signal.SIGTERM, False, id="sigterm-to-mitmdump"),
    pytest.param(signal.SIGINT, False, id="sigint-to-mitmdump"),
])
def test_a_signal_right_after_the_last_response_loses_nothing(mitmdump, api, stop_signal, to_group):
    """The exit comes the moment the traffic ends, with the analysis of the last
    flows still on its way: the exit must wait for it (or redo it), not drop it. A
    terminal's Ctrl-C signals the whole process group, helper included unless it
    keeps out of it."""
    client = load(mitmdump, api).start()
    client.join()
    assert_policy_held(mitmdump, client, mitmdump.stop(stop_signal, group=to_group))


def test_killing_every_process_mitmdump_started_mid_session_loses_nothing(mitmdump, api):
    """kill -9 of the helper (and anything it started) a third of the way through:
    the proxy goes on serving, and the report still counts every exchange, those the
    helper had analysed included."""
    client = load(mitmdump, api).start()
    client.wait_for_answers(client.planned_requests // 3)
    started = mitmdump.descendants()
    assert started, "mitmdump started no process to kill (is the helper process off?)"
    killed = [proc.pid for proc in started if proc.signal(signal.SIGKILL)]
    answered_at_kill = len(client.sent)
    print(f"  killed {killed} after {answered_at_kill} of {client.planned_requests} requests")
    client.join()
    assert answered_at_kill < client.planned_requests, "the traffic had ended before the kill"
    assert_policy_held(mitmdump, client, mitmdump.stop(signal.SIGINT))


@pytest.mark.parametrize("mitmdump", [
    pytest.param(None, id="helper-catches-up"),
    pytest.param(A_HELPER_QUICK_TO_GIVE_UP, id="helper-taken-back"),
], indirect=True)
def test_a_stopped_helper_never_stalls_the_proxy(mitmdump, api):
    """SIGSTOP of the helper for ``STALL_SECONDS`` while the traffic keeps flowing:
    no response waits for the helper (every request in flight during the stall is
    answered within ``SLOWEST_DURING_STALL``), and the report still counts
    everything, whether the helper catches up after SIGCONT or, once it has neither
    read nor run for long enough, the proxy takes its analysis back."""
    client = load(mitmdump, api, pace=STALL_TRAFFIC_SECONDS / calls_for(REQUESTS, THREADS)).start()
    client.wait_for_answers(client.planned_requests // 6)
    helpers = mitmdump.children()
    assert helpers, "mitmdump started no helper process to stop"
    stall_start = time.monotonic()
    try:
        for helper in helpers:
            helper.signal(signal.SIGSTOP)
        time.sleep(STALL_SECONDS)
    finally:
        stall_end = time.monotonic()
        for helper in helpers:
            helper.signal(signal.SIGCONT)
    client.join()
    assert max(s.started for s in client.sent) > stall_end, "the client stopped sending before the stall ended"
    during = client.in_flight_during(stall_start, stall_end)
    slowest = client.slowest(during)
    assert slowest is not None, "no request was in flight during the stall"
    print(f"  stall: {len(during)} requests in flight during {stall_end - stall_start:.1f} s; "
          f"slowest {slowest.latency * 1000:.0f} ms ({slowest.method} {slowest.url}, "
          f"done {slowest.done - stall_start:.2f} s into the stall)")
    problems = policy_violations(mitmdump, client, mitmdump.stop(signal.SIGINT))
    taken_back = "CORS helper process stopped" in mitmdump.output()
    if taken_back != (mitmdump.directory / "extra_addon.py").exists():
        problems.append(f"the helper was {'' if taken_back else 'not '}taken back")
    if slowest.latency >= SLOWEST_DURING_STALL:
        problems.append(f"a response during the stall took {slowest.latency * 1000:.0f} ms "
                        f"(under {SLOWEST_DURING_STALL * 1000:.0f} ms required)")
    assert not problems, "\n".join(problems)
