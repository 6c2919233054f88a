"""Conntrack counters from recorded /proc/net/stat/nf_conntrack and ctnetlink samples."""
import json
from pathlib import Path

import pytest

from toolkit.conntrack.kernel import assess
from toolkit.conntrack.stats import ParseError, delta, from_netlink, parse_proc_stat

DATA = Path(__file__).parent / "data" / "conntrack"


def text(name):
    return (DATA / name).read_text()


def test_procfs_new_kernel_two_cpus_summed():
    c = parse_proc_stat(text("proc_stat_6.1_before.txt"))
    assert c.source == "procfs" and len(c.per_cpu) == 2
    assert c.entries == 0x3A1F2
    t = c.total
    assert t["insert_failed"] == 0x11 + 0x0E
    assert t["drop"] == 0x11 + 0x0E
    assert t["clash_resolve"] == 0x2A + 0x31  # the "clashres" column
    assert t["invalid"] == 0xB1E + 0xA07
    assert t["error"] == 0x0C + 0x09  # icmp_error
    assert t["search_restart"] == 0x35 + 0x2F
    assert "chain_toolong" in c.available  # "chainlength"


def test_procfs_old_kernel_has_no_clashres():
    c = parse_proc_stat(text("proc_stat_4.19.txt"))
    assert "clash_resolve" not in c.available and "chain_toolong" not in c.available
    assert c.get("clash_resolve") is None
    assert c.total["insert_failed"] == 0x3E8 + 0x3A1
    assert c.total["early_drop"] == 3
    assert c.entries == 0xF3C


def test_procfs_delta():
    d = delta(parse_proc_stat(text("proc_stat_6.1_before.txt")), parse_proc_stat(text("proc_stat_6.1_after.txt")))
    assert d["insert_failed"] == 3 and d["drop"] == 3
    assert d["clash_resolve"] == 6 and d["found"] == 7
    assert d["early_drop"] == 0 and d["search_restart"] == 2


def test_delta_wraps_32_bit_per_cpu():
    hdr = "entries  clashres found new invalid ignore delete chainlength insert insert_failed drop early_drop icmp_error  expect_new expect_create expect_delete search_restart\n"
    row = "00000001  00000000 {f} 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000  00000000 00000000 00000000 00000000\n"
    before = parse_proc_stat(hdr + row.format(f="fffffffe") + row.format(f="00000005"))
    after = parse_proc_stat(hdr + row.format(f="00000003") + row.format(f="00000005"))
    assert delta(before, after)["found"] == 5


@pytest.mark.parametrize("bad", ["", "garbage\n1 2 3\n",
                                 "entries  found\n0000000z 00000000\n",
                                 "entries  found drop\n00000001 00000002\n"])
def test_procfs_malformed(bad):
    with pytest.raises(ParseError):
        parse_proc_stat(bad)


def test_netlink_stats_summed_and_delta():
    before = from_netlink(json.loads(text("netlink_stats_before.json")))
    after = from_netlink(json.loads(text("netlink_stats_after.json")))
    assert before.source == "ctnetlink"
    assert before.total["insert_failed"] == 31
    d = delta(before, after)
    assert d == {"found": 7, "invalid": 2, "insert": 0, "insert_failed": 3, "drop": 3, "early_drop": 0,
                 "error": 0, "search_restart": 2, "clash_resolve": 6, "chain_toolong": 0}


def test_netlink_kernel_without_clash_counter():
    c = from_netlink(json.loads(text("netlink_stats_5.4.json")))
    assert "clash_resolve" not in c.available and c.total["insert_failed"] == 2390


def test_netlink_empty_is_an_error():
    with pytest.raises(ParseError):
        from_netlink([])


def test_kernel_fixes_by_version():
    k = assess("4.14.320-eks")
    assert [f.present for f in k.fixes] == [False, False, False, False, False]
    k = assess("5.4.0-150-generic")
    assert {f.commit: f.present for f in k.fixes} == {
        "ed07d9a021df": True, "4e35c1cb9460": True, "6a757c07e51f": False, "bc92470413f3": False,
        "8af79d3edb5f": False}
    k = assess("5.6.19")  # uncertain boundary: 5.6 or 5.7
    assert {f.commit: f.present for f in k.fixes}["6a757c07e51f"] is None
    k = assess("6.18.44-fc-v657")
    assert all(f.present for f in k.fixes)
    assert assess("weird").version is None and all(f.present is None for f in assess("weird").fixes)
    uncertain = {f.commit for f in assess("6.1").fixes if not f.certain}
    assert uncertain == {"6a757c07e51f", "bc92470413f3", "8af79d3edb5f"}
