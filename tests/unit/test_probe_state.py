"""AddressReport.state derivation and the reach verdict mapping (pure, no network)."""
import threading
import time

import pytest

from toolkit.model import Verdict
from toolkit.probe import AddressReport, ProbeKind, ProbeOutcome, ProbeResult, ReachResult, reach_report
from toolkit.probe.model import ResolvedFrom
from toolkit.probe.pacer import Pacer
from toolkit.report.document import json_document
from toolkit.sysinfo.routes import Route, RouteKind

A = "192.168.50.77"
GW = "10.244.1.1"
VIA = Route(destination=A, interface="eth0", gateway=GW, source="10.244.1.10", on_link=False, kind=RouteKind.UNICAST)
ONLINK = Route(destination=A, interface="eth0", gateway=None, source="192.168.50.10", on_link=True, kind=RouteKind.UNICAST)


def p(kind, result, port=None, frm=None, t=None, c=None, address=A):
    return ProbeResult(
        address=address, kind=ProbeKind(kind), port=port, result=ProbeOutcome(result), reply_from=frm, icmp_type=t,
        icmp_code=c, rtt_ms=1.0, detail="", privileged=kind != "tcp-connect")


CTL_OK = (p("control-icmp", "reply", address=GW, frm=GW),)
CTL_BAD = (p("control-icmp", "silence", address=GW),)


@pytest.mark.parametrize("probes,control,route,state", [
    ([p("tcp-syn", "open", 80, A)], CTL_OK, VIA, "up"),
    ([p("tcp-syn", "open", 80, A), p("tcp-syn", "closed", 81, A)], CTL_OK, VIA, "up"),
    ([p("tcp-syn", "closed", 81, A), p("icmp-echo", "reply", frm=A)], CTL_OK, VIA, "port-closed"),
    ([p("tcp-syn", "closed", 81, A, 3, 3)], (), VIA, "port-closed"),
    ([p("tcp-syn", "host-unreachable", 80, GW, 3, 1), p("icmp-echo", "host-unreachable", frm=GW)], CTL_OK, VIA,
     "host-unreachable"),
    # one probe's ICMP error was rate-limited away: the other one still decides
    ([p("tcp-syn", "silence", 80), p("icmp-echo", "host-unreachable", frm=GW, t=3, c=1)], CTL_OK, VIA,
     "host-unreachable"),
    ([p("tcp-syn", "admin-prohibited", 80, GW, 3, 13)], CTL_OK, VIA, "filtered"),
    ([p("tcp-syn", "closed", 80, A), p("tcp-syn", "admin-prohibited", 81, GW, 3, 10)], CTL_OK, VIA, "filtered"),
    ([p("tcp-syn", "net-unreachable", 80, GW, 3, 0)], CTL_OK, VIA, "routing"),
    ([p("tcp-syn", "ttl-exceeded", 80, GW, 11, 0)], CTL_OK, VIA, "routing"),
    ([p("tcp-syn", "silence", 80), p("icmp-echo", "silence")], CTL_OK, VIA, "silent"),
    ([p("tcp-syn", "silence", 80), p("icmp-echo", "silence")], (), VIA, "silent"),
    ([p("tcp-syn", "silence", 80), p("icmp-echo", "silence")], CTL_BAD, VIA, "routing"),
    ([p("tcp-syn", "silence", 80), p("icmp-echo", "reply", frm=A)], CTL_OK, VIA, "filtered"),
    ([p("icmp-echo", "reply", frm=A)], CTL_OK, VIA, "up"),
    ([p("arp", "silence"), p("tcp-syn", "silence", 80)], CTL_OK, ONLINK, "host-unreachable"),
    ([p("arp", "reply", frm=A), p("tcp-syn", "silence", 80)], CTL_OK, ONLINK, "filtered"),
    ([p("tcp-syn", "not-run", 80), p("icmp-echo", "error")], CTL_OK, VIA, "unknown"),
    ([], (), Route(destination=A, interface=None, gateway=None, source=None, on_link=False, kind=RouteKind.UNREACHABLE, detail="no route"), "routing"),
    ([], (), Route(destination=A, interface=None, gateway=None, source=None, on_link=False, kind=RouteKind.PROHIBIT), "filtered"),
])
def test_state(probes, control, route, state):
    rep = AddressReport(
        address=A, route=route, probes=tuple(probes), control=tuple(control))
    assert rep.state == state
    assert rep.summary.startswith(A)


def test_alive_and_host_unreachable_from():
    rep = AddressReport(
        address=A, route=VIA, probes=(p("tcp-syn", "host-unreachable", 80, GW, 3, 1),), control=CTL_OK)
    assert rep.alive is False and rep.host_unreachable_from == GW and rep.control_ok is True
    assert f"from {GW}" in rep.summary
    up = AddressReport(
        address=A, route=VIA, probes=(p("tcp-syn", "closed", 81, A),), control=())
    assert up.alive is True and up.control_ok is None
    silent = AddressReport(
        address=A, route=VIA, probes=(p("tcp-syn", "silence", 80),), control=CTL_OK)
    assert silent.alive is None


def reach(*reps, ports=(80,), lost=(), error=None):
    return ReachResult(
        target="api.corp.example", addresses=tuple(reps), capabilities=("NET_RAW",), lost=lost, ports=ports,
        resolved_from=ResolvedFrom.GETADDRINFO, resolve_error=error, resolve_ms=1.0)


@pytest.mark.parametrize("probes,control,ports,verdict", [
    ([p("tcp-syn", "open", 80, A)], CTL_OK, (80,), Verdict.OK),
    ([p("tcp-syn", "open", 80, A), p("tcp-syn", "closed", 81, A)], CTL_OK, (80, 81), Verdict.PORT_CLOSED),
    ([p("tcp-syn", "closed", 81, A)], CTL_OK, (81,), Verdict.PORT_CLOSED),
    ([p("tcp-syn", "host-unreachable", 80, GW, 3, 1)], CTL_OK, (80,), Verdict.UNREACHABLE_HOST),
    ([p("tcp-syn", "admin-prohibited", 80, GW, 3, 13)], CTL_OK, (80,), Verdict.FILTERED),
    ([p("tcp-syn", "net-unreachable", 80, GW, 3, 0)], CTL_OK, (80,), Verdict.UNREACHABLE_HOST),
    ([p("tcp-syn", "silence", 80)], CTL_OK, (80,), Verdict.UNREACHABLE_HOST),
    ([p("tcp-syn", "silence", 80)], (), (80,), Verdict.INDETERMINATE),
    ([p("tcp-syn", "silence", 80), p("icmp-echo", "reply", frm=A)], CTL_OK, (80,), Verdict.FILTERED),
    ([p("tcp-syn", "open", 80, A), p("tcp-syn", "silence", 8080)], CTL_OK, (80, 8080), Verdict.FILTERED),
    ([p("tcp-syn", "not-run", 80)], CTL_OK, (80,), Verdict.INDETERMINATE),
    ([p("icmp-echo", "reply", frm=A)], CTL_OK, (), Verdict.OK),
])
def test_verdict(probes, control, ports, verdict):
    report = reach_report(reach(AddressReport(
        address=A, route=VIA, probes=tuple(probes), control=control), ports=ports))
    assert report.verdict is verdict
    doc = json_document(report)
    assert doc["target"] == "api.corp.example" and doc["verdict"] == verdict.value
    addr = doc["addresses"][0]
    assert addr["address"] == A and addr["state"] and addr["route"]["gateway"] == GW
    for probe in addr["probes"]:
        assert {"address", "kind", "result", "from", "reply_from", "rtt_ms"} <= set(probe)


def test_routing_finding_named():
    report = reach_report(reach(AddressReport(
        address=A, route=VIA, probes=(p("tcp-syn", "ttl-exceeded", 80, GW, 11, 0),), control=CTL_OK)))
    assert report.verdict is Verdict.UNREACHABLE_HOST
    assert report.findings[0].code == "routing"


def test_worst_address_wins():
    up = AddressReport(
        address="192.168.50.20", route=VIA,
        probes=(p("tcp-syn", "open", 80, "192.168.50.20", address="192.168.50.20"),), control=CTL_OK)
    dead = AddressReport(
        address=A, route=VIA, probes=(p("tcp-syn", "host-unreachable", 80, GW, 3, 1),), control=CTL_OK)
    report = reach_report(reach(up, dead))
    assert report.verdict is Verdict.UNREACHABLE_HOST
    assert report.findings[0].data["address"] == A and report.findings[0].data["icmp_from"] == GW


def test_lost_capability_named_but_verdict_kept():
    rep = AddressReport(
        address=A, route=VIA, probes=(p("tcp-connect", "host-unreachable", 80, GW, 3, 1),), control=CTL_OK)
    report = reach_report(reach(rep, lost=("ICMP echo: not allowed; needs NET_RAW",)))
    assert report.verdict is Verdict.UNREACHABLE_HOST
    doc = json_document(report)
    assert doc["lost"] and "NET_RAW" in " ".join(f["summary"] + f["remedy"] for f in doc["findings"])


@pytest.mark.parametrize("error,verdict", [
    ("getaddrinfo: Name or service not known (EAI -2)", Verdict.DNS_ERROR),
    ("getaddrinfo: Temporary failure in name resolution (EAI -3)", Verdict.DNS_UNAVAILABLE),
    ("getaddrinfo did not return within 5.0 s", Verdict.DNS_UNAVAILABLE),
])
def test_unresolved_name(error, verdict):
    assert reach_report(reach(error=error)).verdict is verdict


# ------------------------------------------------------------------ pacer

def test_pacer_burst_then_one_per_interval():
    pacer = Pacer(burst=2, interval=0.2)
    tickets = [pacer.ticket() for _ in range(4)]
    t0 = time.monotonic()
    got = {}

    def take(t):
        assert pacer.acquire(t, time.monotonic() + 5) == "token"
        got[t] = time.monotonic() - t0

    threads = [threading.Thread(target=take, args=(t,)) for t in reversed(tickets)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(5)
    assert got[0] < 0.1 and got[1] < 0.1  # the burst
    assert 0.15 < got[2] < 0.4 and 0.35 < got[3] < 0.7  # then FIFO, one per interval
    assert got[2] < got[3]


def test_pacer_late_and_verdict():
    pacer = Pacer(burst=1, interval=10.0)
    assert pacer.acquire(pacer.ticket(), time.monotonic() + 1) == "token"
    t = pacer.ticket()
    assert pacer.acquire(t, time.monotonic() + 0.1) == "late"
    # a known-alive host needs no token; a later ticket is not held up by a skipped one
    assert pacer.acquire(pacer.ticket(), time.monotonic() + 1, verdict=lambda: "free") == "free"
    pacer.refund()
    assert pacer.acquire(pacer.ticket(), time.monotonic() + 1) == "token"


def test_pacer_never_grants_after_latest():
    pacer = Pacer(burst=5, interval=1.0)
    assert pacer.acquire(pacer.ticket(), time.monotonic() - 0.01) == "late"
    assert pacer.acquire(pacer.ticket(), time.monotonic() + 1) == "token"


def test_a_bare_word_is_refused_not_converted():
    # Words read from a file become members where they are read (ProbeKind(word)); a str
    # reaching the constructor is a caller that skipped the enum.
    with pytest.raises(TypeError):
        ProbeResult(address=A, kind="tcp-syn", port=80, result=ProbeOutcome.OPEN)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ProbeResult(address=A, kind=ProbeKind.TCP_SYN, port=80, result="open")  # type: ignore[arg-type]
