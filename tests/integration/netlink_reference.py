"""pyroute2's ctnetlink reader: the reference toolkit.conntrack.ctnetlink.SocketReader (the
reader podtriage runs, no ~120 ms import) is compared with on the lab's real tables
(test_netlink_lab.py). pyroute2 is a test dependency only (pyproject.toml)."""

from __future__ import annotations

import socket
from collections.abc import Iterator, Mapping
from typing import Any, Protocol

from toolkit.conntrack.entries import PROTOS


class NetlinkMessage(Protocol):
    """What netlink_to_dict reads of a pyroute2 netlink message (nfct_msg and the nested
    attribute messages): header fields and attributes by name."""

    # Any: a netlink attribute is an int, a string or a nested message, as its name says.
    def get(self, key: str) -> Any:
        """A header field (nfgen_family...)."""

    def get_attr(self, name: str) -> Any:
        """An attribute by its NLA name (CTA_TUPLE_ORIG...), None when absent."""


def netlink_to_dict(msg: NetlinkMessage) -> dict[str, Any] | None:
    """One pyroute2 nfct_msg (a dump reply) -> a flat JSON-able dict. None if not UDP/TCP."""
    family = msg.get("nfgen_family")
    v = "V6" if family == socket.AF_INET6 else "V4"

    def tup(attr: str) -> dict[str, Any] | None:
        t = msg.get_attr(attr)
        if t is None:
            return None
        ip = t.get_attr("CTA_TUPLE_IP")
        pr = t.get_attr("CTA_TUPLE_PROTO")
        if ip is None or pr is None:
            return None
        return {"src": ip.get_attr(f"CTA_IP_{v}_SRC"), "dst": ip.get_attr(f"CTA_IP_{v}_DST"),
                "proto": pr.get_attr("CTA_PROTO_NUM"), "sport": pr.get_attr("CTA_PROTO_SRC_PORT"),
                "dport": pr.get_attr("CTA_PROTO_DST_PORT")}

    o, r = tup("CTA_TUPLE_ORIG"), tup("CTA_TUPLE_REPLY")
    if o is None or r is None or o["proto"] not in PROTOS or o["sport"] is None:
        return None
    out: dict[str, Any] = {"family": family, "proto": o["proto"],
                           "orig": {k: o[k] for k in ("src", "dst", "sport", "dport")},
                           "reply": {k: r[k] for k in ("src", "dst", "sport", "dport")},
                           "status": msg.get_attr("CTA_STATUS"), "timeout": msg.get_attr("CTA_TIMEOUT")}
    pinfo = msg.get_attr("CTA_PROTOINFO")
    if pinfo is not None:
        tcp = pinfo.get_attr("CTA_PROTOINFO_TCP")
        if tcp is not None:
            out["tcp_state"] = tcp.get_attr("CTA_PROTOINFO_TCP_STATE")
    ts = msg.get_attr("CTA_TIMESTAMP")
    if ts is not None:
        out["start_ns"] = ts.get_attr("CTA_TIMESTAMP_START")
    for attr, key in (("CTA_COUNTERS_ORIG", "orig_packets"), ("CTA_COUNTERS_REPLY", "reply_packets")):
        c = msg.get_attr(attr)
        if c is not None:
            out[key] = c.get_attr("CTA_COUNTERS_PACKETS")
    return out


class Pyroute2Reader:
    """ctnetlink through pyroute2, with the methods of toolkit.conntrack.snapshot's reader."""

    def __init__(self) -> None:
        from pyroute2 import Conntrack

        self._ct = Conntrack()

    def stats(self) -> list[Mapping[str, int]]:
        """The per-CPU counters (IPCTNL_MSG_CT_GET_STATS_CPU)."""
        stats: list[Mapping[str, int]] = self._ct.stat()
        return stats

    def count_max(self) -> tuple[int | None, int | None]:
        """This netns's entry count and nf_conntrack_max."""
        count: int | None = self._ct.count()
        cmax: int | None = self._ct.conntrack_max_size()
        return count, cmax

    def dump(self) -> Iterator[Mapping[str, Any]]:
        """Every entry of both families, as netlink_to_dict's dicts ({} for the others)."""
        from pyroute2.netlink.nfnetlink.nfctsocket import NFCTSocket

        for family in (socket.AF_INET, socket.AF_INET6):
            sock = NFCTSocket(nfgen_family=family)
            try:
                for msg in sock.dump():
                    d = netlink_to_dict(msg)
                    yield d if d is not None else {}
            finally:
                sock.close()

    def close(self) -> None:
        """Close the netlink socket."""
        self._ct.close()
