"""The dual-stack rows of DECISIONS.md (toolkit/triage/dualstack.py), from keyword-built
Evidence: the pod's own address families decide what an AAAA answer means."""
from dataclasses import replace

from toolkit.dns.walk import AddrInfoResult
from toolkit.model import Severity, Verdict
from toolkit.probe.model import ProbeOutcome
from toolkit.sysinfo.routes import Route, RouteKind
from toolkit.triage.classify import classify

from tests.unit.evidence_kit import addr, evidence, result, walked

NL = "169.254.25.10"
A, AAAA, DEAD6 = "192.168.50.20", "fd00:50::20", "fd00:50::77"


def no_v6_route(address):
    """What probe_addresses reports in a pod without an IPv6 route: RTM_GETROUTE says
    ENETUNREACH, nothing is sent."""
    rep = addr(address, "routing")
    return replace(rep, route=Route(destination=address, interface=None, gateway=None, source=None, on_link=False, kind=RouteKind.UNREACHABLE, detail="no route: ENETUNREACH"),
                   probes=tuple(replace(p, result=ProbeOutcome.NOT_RUN, reply_from=None) for p in rep.probes))


def v6(address, state):
    rep = addr(address, state)
    return replace(rep, route=Route(destination=address, interface="eth0", gateway="fd00:244:1::1", source="fd00:244:1::10", on_link=False, kind=RouteKind.UNICAST))


def paths(addrs):
    return [walked(NL, "resolv.conf", "udp", addrs), walked(NL, "resolv.conf", "tcp", addrs)]


def test_aaaa_only_name_in_an_ipv4_only_pod_is_bad_answer():
    c = classify(evidence(result(*paths([AAAA])), no_v6_route(AAAA), name="app6.example.org"))
    f = c.findings[0]
    assert (c.verdict, f.code, f.severity) == (Verdict.BAD_ANSWER, "aaaa-unroutable", Severity.CRITICAL)
    assert f.data["servers"] == [NL] and f.data["addresses"] == [AAAA]
    assert "ENETUNREACH" in f.summary and "template" in f.remedy and "IP families" in f.remedy
    # not the indeterminate "dead answer": the pod's own routes prove it unusable here
    assert "dead-answer-unconfirmed" not in [x.code for x in c.findings]


def test_aaaa_beside_a_working_a_is_a_bad_answer_at_warning_level():
    system = AddrInfoResult((A, AAAA), None, 1.0, ordered=(A, AAAA))
    c = classify(evidence(result(*paths([A, AAAA]), system=system), addr(A, "up"), no_v6_route(AAAA),
                          name="dual.example.org"))
    f = c.findings[0]
    assert (c.verdict, f.code, f.severity) == (Verdict.BAD_ANSWER, "aaaa-unroutable", Severity.WARNING)
    assert f.data["serving"] == [A] and f.data["client_order"] == [A, AAAA]
    assert "glibc sorts it last" in f.summary
    # the unroutable AAAA is explained: no separate some-addresses-dead about it
    assert "some-addresses-dead" not in [x.code for x in c.findings]


def test_dual_stack_pod_dead_aaaa_is_not_ok_and_says_which_family():
    c = classify(evidence(result(*paths([A, DEAD6])), addr(A, "up"), v6(DEAD6, "host-unreachable"),
                          name="halfdead.example.org"))
    f = c.findings[0]
    assert (c.verdict, f.code, f.severity) == (Verdict.UNREACHABLE_HOST, "family-fails", Severity.CRITICAL)
    assert f.data["family"] == "ipv6" and f.data["serving_family"] == "ipv4"
    assert f.data["tried_first"] == DEAD6  # glibc: IPv6 first when the pod has an IPv6 route
    assert f.summary.startswith("IPv6 fails for halfdead.example.org") and "AAAA record" in f.remedy


def test_dual_stack_pod_filtered_or_closed_ipv6():
    c = classify(evidence(result(*paths([A, AAAA])), addr(A, "up"), v6(AAAA, "filtered")))
    assert (c.verdict, c.findings[0].code) == (Verdict.FILTERED, "family-fails")
    c = classify(evidence(result(*paths([A, AAAA])), addr(A, "up"), v6(AAAA, "port-closed")))
    assert (c.verdict, c.findings[0].code) == (Verdict.PORT_CLOSED, "family-fails")
    assert "[::]" in c.findings[0].remedy


def test_dead_ipv4_beside_a_serving_ipv6_is_a_warning_when_ipv6_is_tried_first():
    c = classify(evidence(result(*paths([DEAD6.replace("77", "1"), "192.168.50.77"])),
                          v6("fd00:50::1", "up"), addr("192.168.50.77", "host-unreachable")))
    f = c.findings[0]
    assert (c.verdict, f.code, f.severity, f.data["family"]) == \
        (Verdict.UNREACHABLE_HOST, "family-fails", Severity.WARNING, "ipv4")


def test_both_families_serve_is_ok():
    c = classify(evidence(result(*paths([A, AAAA])), addr(A, "up"), v6(AAAA, "up")))
    assert c.verdict is Verdict.OK


def test_ipv6_nameservers_with_brackets_and_ports():
    import pytest

    from toolkit.errors import UsageError
    from toolkit.triage.resolve import parse_servers

    got = parse_servers(["[fd00:60::53]:5353", "fd00:25::10", "[fd00::a]"], "reference")
    assert [(s.address, s.port) for s in got] == [("fd00:60::53", 5353), ("fd00:25::10", 53), ("fd00::a", 53)]
    for bad in ("[fd00::a]:x", "[10.0.0.1]:53", "[fd00::a]53", "[fd00::a]:70000"):
        with pytest.raises(UsageError):
            parse_servers([bad], "reference")


def test_link_local_nameserver_keeps_its_scope():
    import socket

    from toolkit.dns.query import _sockaddr
    from toolkit.triage.resolve import _scoped

    assert _scoped("fe80::25:10%eth0") == "fe80::25:10%eth0"
    assert _scoped("fd00:25::10%eth0") == "fd00:25::10"  # a global address needs no scope
    assert _scoped("10.0.0.1") == "10.0.0.1"
    addr = _sockaddr("fe80::25:10%lo", 53)
    assert addr[0].split("%")[0] == "fe80::25:10" and addr[1] == 53
    assert addr[3] == socket.if_nametoindex("lo")
    assert _sockaddr("fd00:25::10", 53) == ("fd00:25::10", 53)


def test_a_answer_in_an_ipv6_only_pod_is_the_mirror_case():
    rep = no_v6_route("192.168.50.20")
    c = classify(evidence(result(*paths([A])), rep, name="www.example.org"))
    f = c.findings[0]
    assert (c.verdict, f.code, f.severity, f.data["family"]) == \
        (Verdict.BAD_ANSWER, "a-unroutable", Severity.CRITICAL, "ipv4")
    assert "dns64" in f.remedy
    c = classify(evidence(result(*paths([A, AAAA])), rep, v6(AAAA, "up")))
    assert (c.verdict, c.findings[0].code, c.findings[0].severity) == \
        (Verdict.BAD_ANSWER, "a-unroutable", Severity.WARNING)
