"""Self-tests of the dual-stack lab (Lab(ipv6=True)). Marked `lab`: need root."""
import time

import pytest

from tests.lab import APP6, HOST6, NODELOCAL6, SERVERS6, STALE6

pytestmark = pytest.mark.lab


def short(lab, ns, server, name, *opts):
    p = lab.exec(ns, "dig", "+time=1", "+tries=1", "@" + server, name, *opts, "+short", timeout=10)
    return p.stdout.split()


def test_every_dns_server_answers_over_ipv6(lab6):
    for server, addr in SERVERS6.items():
        got = short(lab6, "pod", addr, "ns1.corp.example")
        assert got, (server, addr)
    # the seed over IPv6: NodeLocal (IPv6) -> CoreDNS -> the retired server's stale AAAA
    assert short(lab6, "pod", NODELOCAL6, "api6.corp.example", "AAAA") == [STALE6]
    assert short(lab6, "pod", SERVERS6["upstream"], "api6.corp.example", "AAAA") == [APP6]
    assert short(lab6, "pod", NODELOCAL6, "dual.example.org", "AAAA", "+tcp") == [APP6]


def test_pod_resolv_conf_names_the_ipv6_nodelocal(lab6):
    p = lab6.exec("pod", "cat", "/etc/resolv.conf")
    assert p.stdout.splitlines()[0] == "nameserver " + NODELOCAL6


def test_ipv6_only_host_and_dual_stack_host_serve_http(lab6):
    for addr in (APP6, HOST6):
        p = lab6.exec("pod", "curl", "-s", "-o", "/dev/null", "-m", "2", "-w", "%{http_code}",
                      "http://[%s]/" % addr, timeout=10)
        assert p.stdout.strip() == "200", addr
    p = lab6.exec("host6", "ip", "-4", "-o", "addr", "show", "scope", "global")
    assert p.stdout.strip() == ""  # no IPv4 at all


def test_nd_failure_gives_icmpv6_address_unreachable_after_about_3s(lab6):
    lab6.exec("node", "ip", "-6", "neigh", "flush", "dev", "br0")
    t0 = time.monotonic()
    p = lab6.exec("pod", "ping", "-6", "-c", "1", "-W", "6", STALE6, timeout=15)
    took = time.monotonic() - t0
    assert "Address unreachable" in p.stdout and "fd00:244:1::1" in p.stdout
    assert 2.5 < took < 5.0, took
    # the empty IPv6 subnet on the node: nobody at all
    p = lab6.exec("pod", "ping", "-6", "-c", "1", "-W", "6", "fd00:99::5", timeout=15)
    assert "Address unreachable" in p.stdout


def test_pod_ipv4_only_switch_and_back(lab6):
    try:
        lab6.pod_ipv4_only()
        p = lab6.exec("pod", "ip", "-6", "route", "get", APP6)
        assert p.returncode != 0  # Network is unreachable
        assert lab6.exec("pod", "cat", "/etc/resolv.conf").stdout.startswith("nameserver 169.254.25.10")
    finally:
        lab6.clear_faults()
    assert lab6.exec("pod", "ip", "-6", "route", "get", APP6).returncode == 0


def test_clear_faults_after_app_down_leaves_the_node_knowing_the_app(lab6):
    """What a test after app_down starts from: the node's neighbour entries for the app
    host alive again, as in a fresh lab (reach picks an on-link control among them)."""
    try:
        lab6.app_down()
        # traffic while the link is down: the node's ND/ARP for the app fails
        for addr in ("192.168.50.20", APP6):
            lab6.exec("node", "ping", "-c", "1", "-W", "1", addr, timeout=5)
    finally:
        lab6.clear_faults()
    for addr in ("192.168.50.20", APP6):
        shown = lab6.exec("node", "ip", "neigh", "show", "to", addr).stdout
        assert any(s in shown for s in ("REACHABLE", "STALE", "DELAY", "PROBE")), (addr, shown)
    # every clear flushes the node's IPv6 neighbours on its LAN (a FAILED entry would answer
    # the next scenario at once) and has it learn the app again
    lab6.clear_faults()
    shown = lab6.exec("node", "ip", "neigh", "show", "to", APP6).stdout
    assert any(s in shown for s in ("REACHABLE", "STALE", "DELAY", "PROBE")), shown
