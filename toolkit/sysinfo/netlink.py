"""The netlink requests `diagnose` makes, over a plain socket.

Why not pyroute2 here: pyroute2 0.9's netlink core is built on asyncio (and its package
root imports multiprocessing, NDB, IPDB...): `import pyroute2` costs ~120 ms and even its
narrowest socket module (pyroute2.netlink.core, with a stub package root) ~54 ms, a sixth
to a third of the 0.3 s a healthy `diagnose` may take. The messages diagnose reads are
fixed-layout (a route lookup, the neighbour, address and route dumps of the on-link control,
ctnetlink's statistics and table dump), so the standard library answers them in well under
a millisecond of import (toolkit.sysinfo.routes, toolkit.conntrack.ctnetlink; both compared
with pyroute2 on the lab's real tables in tests/integration/test_netlink_lab.py).

Layouts: linux/netlink.h (nlmsghdr, nlmsgerr, nlattr), linux/rtnetlink.h (rtmsg),
linux/netfilter/nfnetlink.h (nfgenmsg), linux/netfilter/nfnetlink_conntrack.h (CTA_STATS_*).
Each socket has a receive timeout: a kernel that never answers is an OSError, not a hang.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterator

NETLINK_ROUTE = 0
NETLINK_NETFILTER = 12
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
NLA_TYPE_MASK = 0x3FFF  # without NLA_F_NESTED / NLA_F_NET_BYTEORDER
_HDR = struct.Struct("=IHHII")  # nlmsghdr: len, type, flags, seq, pid
_NLA = struct.Struct("=HH")  # nlattr: len, type
_RECV = 65536
TIMEOUT_S = 2.0  # a local kernel answers in microseconds; this only bounds a broken one


class NetlinkError(OSError):
    """The kernel answered a request with an error (NLMSG_ERROR, errno in ``errno``)."""


def _align(n: int) -> int:
    return (n + 3) & ~3


def attrs(data: bytes, offset: int = 0) -> dict[int, bytes]:
    """The attributes (type -> payload) from ``offset`` of a message body; nested ones are
    payloads to pass to ``attrs`` again."""
    out: dict[int, bytes] = {}
    while offset + _NLA.size <= len(data):
        length, kind = _NLA.unpack_from(data, offset)
        if length < _NLA.size:
            break
        out[kind & NLA_TYPE_MASK] = data[offset + _NLA.size:offset + length]
        offset += _align(length)
    return out


def attr(kind: int, payload: bytes) -> bytes:
    """One nlattr, padded to 4 bytes."""
    raw = _NLA.pack(_NLA.size + len(payload), kind) + payload
    return raw + b"\0" * (_align(len(raw)) - len(raw))


class Socket:
    """One netlink socket of ``protocol`` in this network namespace (bound by the kernel to
    a unique port id), closed by ``close`` or ``with``."""

    def __init__(self, protocol: int, timeout: float = TIMEOUT_S) -> None:
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, protocol)
        try:
            self._sock.settimeout(timeout)
            self._sock.bind((0, 0))
        except OSError:
            self._sock.close()
            raise
        self._seq = int.from_bytes(os.urandom(2), "little")

    def __enter__(self) -> Socket:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the socket."""
        self._sock.close()

    def request(self, msg_type: int, body: bytes, flags: int = NLM_F_REQUEST) -> Iterator[tuple[int, bytes]]:
        """Send one request; yield (type, body) of each answer until the kernel's last
        (NLMSG_DONE for a dump, the single answer otherwise). An NLMSG_ERROR with a
        non-zero errno raises NetlinkError."""
        self._seq += 1
        seq = self._seq
        self._sock.sendto(_HDR.pack(_HDR.size + len(body), msg_type, flags, seq, 0) + body, (0, 0))
        dump = flags & NLM_F_DUMP == NLM_F_DUMP
        while True:
            data = self._sock.recv(_RECV)
            offset = 0
            while offset + _HDR.size <= len(data):
                length, kind, _flags, mseq, _pid = _HDR.unpack_from(data, offset)
                if length < _HDR.size:
                    return
                body_of = data[offset + _HDR.size:offset + length]
                offset += _align(length)
                if mseq != seq:
                    continue  # an answer to an earlier request of this socket
                if kind == NLMSG_DONE:
                    return
                if kind == NLMSG_ERROR:
                    code = -struct.unpack_from("=i", body_of)[0]
                    if code:
                        raise NetlinkError(code, os.strerror(code))
                    return  # an acknowledgement
                yield kind, body_of
                if not dump:
                    return
