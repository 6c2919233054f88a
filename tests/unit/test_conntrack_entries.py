"""DNS flow entries from recorded ctnetlink dicts and /proc/net/nf_conntrack lines
(recorded in the integration lab: 10.96.0.10 DNATed to 10.245.91.2 / 10.245.92.2, the
second backend silent for a while)."""
import json
from pathlib import Path

from toolkit.conntrack.entries import from_netlink_dict, group_by_backend, parse_proc_line

DATA = Path(__file__).parent / "data" / "conntrack"
B1, B2 = "10.245.91.2:53", "10.245.92.2:53"


def netlink_entries():
    return [e for e in (from_netlink_dict(d) for d in json.loads((DATA / "netlink_entries_lab.json").read_text()))
            if e is not None]


def proc_entries(name="proc_nf_conntrack_lab.txt"):
    return [e for e in (parse_proc_line(ln) for ln in (DATA / name).read_text().splitlines()) if e is not None]


def test_dnat_targets_and_unreplied():
    es = [e for e in netlink_entries() if e.is_dns()]
    via_svc = [e for e in es if e.orig_dst == "10.96.0.10"]
    assert {e.dnat_target for e in via_svc} == {B1, B2}
    assert all("DST_NAT" in e.status for e in via_svc)
    direct = [e for e in es if e.orig_dst != "10.96.0.10"]
    assert direct and all(e.dnat_target is None and e.backend == e.service for e in direct)
    unreplied = [e for e in es if e.unreplied]
    assert unreplied and {e.backend for e in unreplied} == {B2}
    tcp = [e for e in es if e.proto == "tcp"]
    assert tcp and tcp[0].state == "TIME_WAIT" and "ASSURED" in tcp[0].status
    assert tcp[0].orig_packets == 6


def test_procfs_and_netlink_agree():
    def key(e):
        return (e.proto, e.orig_src, e.orig_sport, e.orig_dst, e.reply_src, e.unreplied, e.state)

    assert sorted(map(key, proc_entries())) == sorted(map(key, netlink_entries()))


def test_group_by_backend():
    groups = {g.backend: g for g in group_by_backend(e for e in netlink_entries() if e.orig_dst == "10.96.0.10")}
    assert set(groups) == {B1, B2}
    assert groups[B2].unreplied >= 1 and groups[B1].unreplied == 0
    assert groups[B1].services == ("10.96.0.10:53",)
    assert list(group_by_backend(netlink_entries()))[0].backend == B2  # most unreplied first


def test_proc_lines_v6_tcp_and_others():
    es = proc_entries("proc_nf_conntrack_v6.txt")
    assert len(es) == 3  # icmp skipped
    v6 = es[0]
    assert v6.family == "ipv6" and v6.unreplied and v6.dnat_target == "[fd00:10:245::3]:53"
    assert v6.timeout_s == 27
    assert es[1].state == "ESTABLISHED" and es[1].dnat_target is None and not es[1].unreplied
    assert [e.is_dns() for e in es] == [True, True, False]


def test_garbage_lines_are_skipped():
    assert parse_proc_line("") is None
    assert parse_proc_line("ipv4 2 udp 17 x src=1") is None
    assert parse_proc_line("ipv4 2 udp 17 30 src=1.1.1.1 dst=2.2.2.2 sport=1") is None
