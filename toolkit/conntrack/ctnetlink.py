"""ctnetlink over a plain netlink socket: the per-CPU statistics, the table's count and
max, and the dump of its entries, as NetlinkReader (toolkit.conntrack.snapshot) wants them.

Why not pyroute2 (the house default): its import is ~120 ms (asyncio, multiprocessing, NDB
come with the package root; toolkit.sysinfo.netlink has the measurements), and `diagnose`
reads conntrack twice on every run. The messages are fixed-layout, and the results are the
ones pyroute2 gives (tests/integration/test_netlink_lab.py compares both on the lab's real
tables). Layouts: linux/netfilter/nfnetlink.h (nfgenmsg), nfnetlink_conntrack.h (CTA_*).
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator, Mapping
from typing import Any

from toolkit.sysinfo.netlink import NETLINK_NETFILTER, NLM_F_DUMP, NLM_F_REQUEST, Socket, attrs

NFNL_SUBSYS_CTNETLINK = 1
IPCTNL_MSG_CT_GET, IPCTNL_MSG_CT_GET_STATS_CPU, IPCTNL_MSG_CT_GET_STATS = 0x1, 0x4, 0x5
_NFGEN = struct.Struct("!BBH")  # nfgenmsg: family, version (NFNETLINK_V0), res_id (big endian)
# enum ctattr_stats_cpu, in order from 1, named as pyroute2's Conntrack.stat() names them
STATS_CPU = ("searched", "found", "new", "invalid", "ignore", "delete", "delete_list", "insert",
             "insert_failed", "drop", "early_drop", "error", "search_restart", "clash_resolve",
             "chain_toolong")
CTA_STATS_GLOBAL_ENTRIES, CTA_STATS_GLOBAL_MAX_ENTRIES = 1, 2
# enum ctattr_type / ctattr_tuple / ctattr_ip / ctattr_l4proto / ctattr_protoinfo(_tcp) /
# ctattr_counters / ctattr_tstamp
CTA_TUPLE_ORIG, CTA_TUPLE_REPLY, CTA_STATUS, CTA_PROTOINFO, CTA_TIMEOUT = 1, 2, 3, 4, 7
CTA_COUNTERS_ORIG, CTA_COUNTERS_REPLY, CTA_TIMESTAMP = 9, 10, 20
CTA_TUPLE_IP, CTA_TUPLE_PROTO = 1, 2
CTA_PROTO_NUM, CTA_PROTO_SRC_PORT, CTA_PROTO_DST_PORT = 1, 2, 3
CTA_PROTOINFO_TCP, CTA_PROTOINFO_TCP_STATE = 1, 1
CTA_COUNTERS_PACKETS, CTA_TIMESTAMP_START = 1, 1
_PROTOS = (socket.IPPROTO_TCP, socket.IPPROTO_UDP)  # what toolkit.conntrack.entries.PROTOS keeps


def _be(raw: bytes | None) -> int | None:
    return None if raw is None else int.from_bytes(raw, "big")


def _request(nl: Socket, msg: int, family: int = socket.AF_INET) -> Iterator[bytes]:
    """The bodies (after nfgenmsg's 4 bytes are kept) of a ctnetlink dump request."""
    body = _NFGEN.pack(family, 0, 0)
    for _kind, answer in nl.request(NFNL_SUBSYS_CTNETLINK << 8 | msg, body, NLM_F_REQUEST | NLM_F_DUMP):
        yield answer


def entry_dict(body: bytes) -> dict[str, Any] | None:
    """One IPCTNL_MSG_CT_NEW answer -> the flat dict toolkit.conntrack.entries.from_netlink_dict
    reads, as tests/integration/netlink_reference.py makes it of pyroute2's message (None if
    not UDP/TCP, or too short to hold nfgenmsg)."""
    if len(body) < _NFGEN.size:
        return None
    family = body[0]
    a = attrs(body, _NFGEN.size)
    src, dst = (3, 4) if family == socket.AF_INET6 else (1, 2)  # CTA_IP_V6_* / CTA_IP_V4_*

    def tup(kind: int) -> dict[str, Any] | None:
        if kind not in a:
            return None
        t = attrs(a[kind])
        if CTA_TUPLE_IP not in t or CTA_TUPLE_PROTO not in t:
            return None
        ip, pr = attrs(t[CTA_TUPLE_IP]), attrs(t[CTA_TUPLE_PROTO])
        fam = socket.AF_INET6 if family == socket.AF_INET6 else socket.AF_INET
        return {"src": socket.inet_ntop(fam, ip[src]) if src in ip else None,
                "dst": socket.inet_ntop(fam, ip[dst]) if dst in ip else None,
                "proto": _be(pr.get(CTA_PROTO_NUM)), "sport": _be(pr.get(CTA_PROTO_SRC_PORT)),
                "dport": _be(pr.get(CTA_PROTO_DST_PORT))}

    o, r = tup(CTA_TUPLE_ORIG), tup(CTA_TUPLE_REPLY)
    if o is None or r is None or o["proto"] not in _PROTOS or o["sport"] is None:
        return None
    out: dict[str, Any] = {"family": family, "proto": o["proto"],
                           "orig": {k: o[k] for k in ("src", "dst", "sport", "dport")},
                           "reply": {k: r[k] for k in ("src", "dst", "sport", "dport")},
                           "status": _be(a.get(CTA_STATUS)), "timeout": _be(a.get(CTA_TIMEOUT))}
    if CTA_PROTOINFO in a:
        tcp = attrs(a[CTA_PROTOINFO]).get(CTA_PROTOINFO_TCP)
        if tcp is not None:
            out["tcp_state"] = _be(attrs(tcp).get(CTA_PROTOINFO_TCP_STATE))
    if CTA_TIMESTAMP in a:
        out["start_ns"] = _be(attrs(a[CTA_TIMESTAMP]).get(CTA_TIMESTAMP_START))
    for kind, key in ((CTA_COUNTERS_ORIG, "orig_packets"), (CTA_COUNTERS_REPLY, "reply_packets")):
        if kind in a:
            out[key] = _be(attrs(a[kind]).get(CTA_COUNTERS_PACKETS))
    return out


class SocketReader:
    """NetlinkReader over one NETLINK_NETFILTER socket (OSError from the kernel, e.g.
    EPERM without NET_ADMIN, as pyroute2's reader raised it)."""

    def __init__(self) -> None:
        self._nl = Socket(NETLINK_NETFILTER)

    def stats(self) -> list[Mapping[str, int]]:
        """The per-CPU counters (IPCTNL_MSG_CT_GET_STATS_CPU): {"cpu": N, "found": ...}."""
        out: list[Mapping[str, int]] = []
        for body in _request(self._nl, IPCTNL_MSG_CT_GET_STATS_CPU):
            row = {"cpu": _NFGEN.unpack_from(body)[2]}  # res_id: the CPU (ctnetlink_ct_stat_cpu_fill_info)
            for kind, raw in attrs(body, _NFGEN.size).items():
                if 1 <= kind <= len(STATS_CPU):
                    row[STATS_CPU[kind - 1]] = int.from_bytes(raw, "big")
            out.append(row)
        return out

    def count_max(self) -> tuple[int | None, int | None]:
        """This netns's entry count and nf_conntrack_max (IPCTNL_MSG_CT_GET_STATS)."""
        for body in _request(self._nl, IPCTNL_MSG_CT_GET_STATS):
            a = attrs(body, _NFGEN.size)
            return _be(a.get(CTA_STATS_GLOBAL_ENTRIES)), _be(a.get(CTA_STATS_GLOBAL_MAX_ENTRIES))
        return None, None

    def dump(self) -> Iterator[Mapping[str, Any]]:
        """Every entry of both families, as entry_dict's dicts ({} for the others)."""
        for family in (socket.AF_INET, socket.AF_INET6):
            for body in _request(self._nl, IPCTNL_MSG_CT_GET, family):
                d = entry_dict(body)
                yield d if d is not None else {}

    def close(self) -> None:
        """Close the netlink socket."""
        self._nl.close()
