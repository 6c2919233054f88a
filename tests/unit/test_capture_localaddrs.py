"""Who-asked looks up only queries a socket of this network namespace could have sent
(toolkit/capture/localaddrs.py), and the live report says which capture path ran."""

from __future__ import annotations

import io
import json

from toolkit.capture import hints, localaddrs
from toolkit.capture.analysis import Analyzer
from toolkit.capture.live import CapturePath
from toolkit.capture.records import CaptureMode, CaptureResult, StopReason
from toolkit.capture.report import capture_report
from toolkit.capture.whoasked import SocketFinder
from toolkit.report.jsondoc import render_json


def test_this_namespace_addresses_include_loopback_and_strip_the_ipv6_scope():
    got = localaddrs.read_addresses()
    assert got is not None and "127.0.0.1" in got
    assert not any("%" in a for a in got)


def test_membership_rereads_at_most_once_a_second():
    reads: list[int] = []
    table = [frozenset({"10.244.1.10"})]

    def reader() -> frozenset[str]:
        reads.append(1)
        return table[-1]

    now = [100.0]
    local = localaddrs.LocalAddresses(reader=reader, clock=lambda: now[0])
    assert "10.244.1.10" in local and "127.0.0.5" in local and "::1" in local
    assert "10.244.2.7" not in local and "10.244.2.7" not in local
    assert len(reads) == 1  # the misses within a second did not re-read
    table.append(frozenset({"10.244.1.10", "10.244.2.7"}))  # an address added during the capture
    now[0] += localaddrs.REFRESH_S
    assert "10.244.2.7" in local and len(reads) == 2
    assert 53 not in local  # type: ignore[operator]


def test_unknown_addresses_never_skip_a_lookup():
    local = localaddrs.LocalAddresses(reader=lambda: None)
    assert "192.0.2.99" in local


def test_who_asked_skips_a_query_from_another_namespace_without_a_lookup():
    finder = SocketFinder(local=localaddrs.LocalAddresses(reader=lambda: frozenset({"10.244.1.10"})))
    try:
        seq = finder.diag.seq
        finder.saw_query("10.244.3.3", 40000, "10.233.0.3", 53, "udp", 1.0)  # type: ignore[arg-type]
        assert finder.not_local == 1 and finder.sockets == 0 and finder.diag.seq == seq  # no netlink request
        finder.saw_query("127.0.0.1", 1, "127.0.0.1", 53, "udp", 1.0)  # type: ignore[arg-type]
        assert finder.sockets == 1 and finder.diag.seq == seq + 1  # the order known: one request
    finally:
        finder.close()


def test_the_lookup_order_is_known_before_the_first_query():
    from toolkit.capture.sockdiag import SockDiag

    diag = SockDiag()
    try:
        assert set(diag.order) == {"udp", "tcp"}, diag.order
    finally:
        diag.close()


def test_hint_filter_tests_the_source_and_compiles():
    from scapy.arch.common import compile_filter

    src = localaddrs.source_filter(frozenset({"10.244.1.10", "fd00:244:1::10", "127.0.0.1"}))
    assert src == "src host 10.244.1.10 or src host fd00:244:1::10 or src net 127.0.0.0/8 or src host ::1"
    expr = hints.hint_filter((53,), src)
    assert expr == f"(udp dst port 53 or tcp dst port 53) and ({src})"
    assert compile_filter(expr, linktype=12).bf_len > 0  # DLT_RAW, as live.py compiles it
    many = frozenset(f"10.233.{i // 250}.{i % 250}" for i in range(localaddrs.MAX_FILTER_ADDRESSES + 1))
    assert localaddrs.source_filter(many) is None and localaddrs.source_filter(None) is None


def _live(extra: dict[str, object]) -> dict[str, object]:
    an = Analyzer()
    an.finish(0.0)
    res = CaptureResult(mode=CaptureMode.LIVE, source="eth0", packets=0, summary=an.summary(), decoder={},
                        linktypes=("linux-sll",), file_format=None, stopped_by=StopReason.DURATION,
                        elapsed_s=1.0, notes=(), both_directions=True, extra=extra)
    out = io.StringIO()
    render_json(capture_report(res), out)
    doc: dict[str, object] = json.loads(out.getvalue())
    return doc


def test_the_report_says_which_capture_path_ran_and_why_not_the_ring():
    doc = _live({"capture_path": CapturePath.RING, "capture_path_reason": None})
    assert doc["capture_path"] == "tpacket_v3" and doc["capture_path_reason"] is None
    doc = _live({"capture_path": CapturePath.RECVMSG, "capture_path_reason": "PODTRIAGE_CAPTURE_RING=0"})
    assert doc["capture_path"] == "recvmsg" and doc["capture_path_reason"] == "PODTRIAGE_CAPTURE_RING=0"
