"""Issue 10 (runtime half), the pure parts: the cooperative stop (toolkit.signals), queries
that notice it within a slice, the pending-query cap, a capture read cut short, and the
false oks (corefile check SERVFAIL, a race test that sent nothing).

Network use here is loopback only: a socket that never answers stands in for a hung server.
"""

from __future__ import annotations

import signal
import socket
import threading
import time

import pytest

from toolkit import signals
from toolkit.capture import synth as S
from toolkit.capture.analysis import Analyzer
from toolkit.capture.config import AnalyzerConfig
from toolkit.capture.decode import Decoder
from toolkit.capture.pcapio import LINKTYPE_RAW
from toolkit.deadline import Deadline
from toolkit.model import Report, Verdict


@pytest.fixture(autouse=True)
def _fresh_stop():
    signals.reset()
    yield
    signals.reset()


def _stop_after(seconds: float, signum: int = signal.SIGINT) -> threading.Thread:
    t = threading.Timer(seconds, signals.request_stop, args=(signum,))
    t.start()
    return t


# ----------------------------------------------------------------------------- the stop itself

def test_stop_ends_every_deadline():
    dl = Deadline(3600.0)
    assert dl.remaining() > 3000
    signals.request_stop(signal.SIGTERM)
    assert dl.remaining() == 0.0 and dl.expired
    assert signals.received() is signal.SIGTERM
    assert signals.exit_code() == 143


def test_first_signal_decides_and_exit_code_is_128_plus_it():
    signals.request_stop(signal.SIGINT)
    signals.request_stop(signal.SIGTERM)
    assert signals.received() is signal.SIGINT
    assert signals.exit_code() == 130


def test_wait_wakes_at_once_on_stop():
    _stop_after(0.1)
    t0 = time.monotonic()
    assert signals.wait(30.0) is True
    assert time.monotonic() - t0 < 1.0


def test_sliced_join_gives_up_after_the_grace():
    hang = threading.Event()
    worker = threading.Thread(target=hang.wait, args=(30,), daemon=True)
    worker.start()
    _stop_after(0.1)
    t0 = time.monotonic()
    signals.join([worker], time.monotonic() + 30.0, grace=0.2)
    assert time.monotonic() - t0 < 1.0
    hang.set()


def test_mark_interrupted_is_never_ok():
    signals.request_stop(signal.SIGINT)
    from toolkit.report.interrupted import mark_interrupted

    rep = mark_interrupted(Report(command="resolve", verdict=Verdict.OK, duration_ms=1500.0))
    assert rep.verdict is Verdict.INDETERMINATE
    assert rep.findings[0].code == "interrupted"
    assert rep.data["interrupted"] == "SIGINT"
    bad = mark_interrupted(Report(command="resolve", verdict=Verdict.DNS_UNAVAILABLE))
    assert bad.verdict is Verdict.DNS_UNAVAILABLE  # a problem seen is still a problem seen


def test_handler_second_signal_raises():
    signals._handler(signal.SIGINT, None)
    assert signals.stopped()
    with pytest.raises(KeyboardInterrupt):
        signals._handler(signal.SIGINT, None)


# ----------------------------------------------------------------------------- queries

@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_query_to_a_hung_server_ends_on_stop(transport):
    from toolkit.dns.query import query

    kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
    hung = socket.socket(socket.AF_INET, kind)
    hung.bind(("127.0.0.1", 0))
    if transport == "tcp":
        hung.listen(4)  # the handshake completes (kernel), nobody ever answers
    port = hung.getsockname()[1]
    try:
        _stop_after(0.3)
        t0 = time.monotonic()
        res = query("127.0.0.1", "hung.test.", "A", transport, 30.0, port=port)
        took = time.monotonic() - t0
    finally:
        hung.close()
    assert took < 0.3 + 2 * signals.TICK_S + 0.3, took
    # cut by the stop: not the server's fault, counted like a deadline cut
    assert res.error == "deadline" and "interrupted" in (res.error_detail or "")


def test_query_not_sent_after_stop():
    from toolkit.dns.query import query

    signals.request_stop()
    res = query("127.0.0.1", "x.test.", "A", "udp", Deadline(10).timeout(2.0), port=9)
    assert res.error == "deadline"


# ----------------------------------------------------------------------------- capture analysis

def _queries(n: int, *, answered_every: int = 0):
    dec = Decoder((53,))
    t0 = 1_700_000_000 * 10**9
    for i in range(n):
        src = f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"
        q = S.udp(src, "10.96.0.10", 1024 + i % 60000, 53, S.dns_query(i & 0xFFFF, f"n{i}.example.com"))
        yield from dec.decode(t0 + i * 1000, LINKTYPE_RAW, q)
        if answered_every and i % answered_every == 0:
            r = S.udp("10.96.0.10", src, 53, 1024 + i % 60000,
                      S.dns_response(i & 0xFFFF, f"n{i}.example.com", addresses=("10.1.1.1",)))
            yield from dec.decode(t0 + i * 1000 + 500, LINKTYPE_RAW, r)


def test_pending_queries_are_capped_and_evictions_counted():
    an = Analyzer(AnalyzerConfig(max_pending=100))
    for ev in _queries(1000):
        an.feed(ev)
        assert len(an.pending) <= 100
    an.finish()
    s = an.summary()
    assert s.evicted_pending == 900 and s.max_pending == 100


def test_cut_short_read_leaves_pending_out_of_unanswered():
    from toolkit.capture.report import capture_report
    from toolkit.capture.records import CaptureResult

    an = Analyzer(AnalyzerConfig())
    for ev in _queries(50, answered_every=5):
        an.feed(ev)
    an.finish(cut_short=True)
    s = an.summary()
    assert s.pending_at_cut == 40 and s.unanswered == 0 and s.pairs == 10
    assert {lk.outcome for lk in s.lookups} == {"answered", "cut-short"}
    rep = capture_report(CaptureResult(mode="read", source="f.pcap", packets=60, summary=s, decoder={},
                                       stopped_by="deadline"))
    assert rep.verdict is not Verdict.OK
    assert "capture-cut-short" in {f.code for f in rep.findings}
    assert rep.data["cut_short"] is True and rep.data["pending_at_cut"] == 40


def test_whole_read_is_not_cut_short():
    from toolkit.capture.report import capture_report
    from toolkit.capture.records import CaptureResult

    an = Analyzer(AnalyzerConfig())
    for ev in _queries(10, answered_every=1):
        an.feed(ev)
    an.finish()
    rep = capture_report(CaptureResult(mode="read", source="f.pcap", packets=20, summary=an.summary(), decoder={}))
    assert rep.verdict is Verdict.OK and rep.data["cut_short"] is False


def test_unread_packets_are_a_finding():
    from toolkit.capture.report import capture_report
    from toolkit.capture.records import CaptureResult

    an = Analyzer(AnalyzerConfig())
    an.finish()
    rep = capture_report(CaptureResult(mode="live", source="any", packets=100, summary=an.summary(), decoder={},
                                       stopped_by="duration",
                                       kernel_packets=5100, kernel_drops=0, unread=5000))
    assert rep.data["unread"] == 5000 and rep.data["kernel"]["unread"] == 5000
    assert "capture-unread" in {f.code for f in rep.findings}


# ----------------------------------------------------------------------------- false oks

def _target_check(rcodes, errors=()):
    from toolkit.corefile.check import TargetCheck, Upstream
    from toolkit.dns.query import QueryResult

    up = Upstream(corefile="Corefile", block=".:53", line=2, file_line=2, zone=".", target="192.0.2.1", port=53, stub=False)
    soa = tuple(QueryResult(server="192.0.2.1", port=53, transport=t, qname=".", qtype="SOA", rcode=r) for t, r in zip(("udp", "tcp"), rcodes))
    soa += tuple(QueryResult(server="192.0.2.1", port=53, transport="udp", qname=".", qtype="SOA", error=e,
                            error_detail="x") for e in errors)
    names = (QueryResult(server="192.0.2.1", port=53, transport="udp", qname="a.example.", qtype="A",
                          rcode=rcodes[0]),) if rcodes else ()
    return TargetCheck(upstream=up, soa=soa, names=names)


def test_corefile_check_servfail_everywhere_is_not_ok():
    from toolkit.corefile.check import _classify, check_report

    c = _classify(_target_check(("SERVFAIL", "SERVFAIL")))
    assert c.status == "servfail"
    rep = check_report([c], [])
    assert rep.verdict is Verdict.DNS_ERROR
    assert [f.code for f in rep.findings] == ["upstream-servfail"]


def test_corefile_check_nothing_sent_is_unchecked():
    from toolkit.corefile.check import _classify, check_report

    c = _classify(_target_check((), errors=("deadline", "deadline")))
    assert c.status == "unchecked"
    assert check_report([c], []).verdict is Verdict.INDETERMINATE


def test_race_test_that_sent_nothing_is_indeterminate():
    from toolkit.conntrack.findings import race_findings
    from toolkit.conntrack.race import ModeResult, RaceResult

    modes = tuple(ModeResult(mode=m, lookups=0, queries=0, answered=0, lost=0, stalled=0, not_run=200, errors={}, latency_ms_p50=None, latency_ms_p99=None, latency_ms_max=None, duration_s=0.0)
                  for m in ("parallel", "reopen", "tcp"))
    fs = race_findings(RaceResult(target="10.96.0.10", port=53, name="x.", count=200, timeout_s=1.0, modes=modes))
    assert fs[0].code == "race-test-incomplete" and fs[0].verdict is Verdict.INDETERMINATE
    from toolkit.model import derive_verdict

    assert derive_verdict(fs) is Verdict.INDETERMINATE


def test_abortable_section_raises_on_the_first_signal():
    with pytest.raises(KeyboardInterrupt):
        with signals.abortable():
            signals._handler(signal.SIGTERM, None)
    assert signals.stopped() and signals.received() is signal.SIGTERM
    signals.reset()
    signals._handler(signal.SIGINT, None)  # outside: only the stop event
    assert signals.stopped()


def test_diagnose_cut_before_any_answer_is_not_dns_unavailable():
    from tests.unit.test_resolve_findings import failed, result
    from toolkit.triage.diagnose import Evidence, classify

    res = result(failed("169.254.25.10", "resolv.conf", "udp", "deadline"),
                 failed("169.254.25.10", "resolv.conf", "tcp", "deadline"))
    c = classify(Evidence(name="api.corp.example", resolve=res, probes=(), ports=(80,), ports_given=False))
    assert c.verdict is Verdict.INDETERMINATE and c.confidence == "low"
    assert c.findings[0].code == "dns-not-asked" and "--deadline" in (c.settle or "")
    # a real timeout is still evidence
    res = result(failed("169.254.25.10", "resolv.conf", "udp", "timeout"),
                 failed("169.254.25.10", "resolv.conf", "tcp", "deadline"))
    assert classify(Evidence(name="api.corp.example", resolve=res, probes=(), ports=(80,), ports_given=False)).verdict is Verdict.DNS_UNAVAILABLE
