"""One-socket inet_diag lookups (linux/inet_diag.h): a client socket's 4-tuple -> its inode.

Who-asked (whoasked.py) looks each new DNS client socket up the moment its query is seen,
while it is still open; this is that lookup, one netlink round trip per socket.
"""

from __future__ import annotations

import socket
import struct

from toolkit.capture.dnswire import Transport

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST = 0x1
NLMSG_ERROR = 2
_NLH = struct.Struct("=IHHII")
_MSG = struct.Struct("=BBBB2s2s16s16sIQIIIII")  # struct inet_diag_msg
_NOCOOKIE = b"\xff" * 8  # INET_DIAG_NOCOOKIE
_PROTO = {Transport.UDP: socket.IPPROTO_UDP, Transport.TCP: socket.IPPROTO_TCP}


class SockDiag:
    """One-socket inet_diag lookups: (local, remote) 4-tuple -> socket inode.

    A dump (``ss``) walks the kernel's whole UDP/TCP hash tables, shared by every network
    namespace: 0.8 ms per dump on the lab machine, so polling dumps fast enough to see a
    socket that lives 0.3 ms would take a core. An exact lookup (no NLM_F_DUMP) is one hash
    lookup in the kernel. Hand-written: pyroute2's DiagSocket offers dumps only."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG)
        self.sock.settimeout(0.5)
        self.seq = 0
        # udp_dump_one() looks the socket up as a packet *from* idiag_src would be
        # (linux/net/ipv4/udp_diag.c), inet_diag_find_one_icsk() the other way round: learn
        # which order this kernel wants from the first hit, and before any from sockets of our
        # own (learn_order): until then every miss (a socket closed before the look, most of
        # glibc's at high rates) costs both orders, two netlink round trips.
        self.order: dict[str, bool] = {}
        self.connected = False  # the last socket found has a peer (connect(2)ed; whoasked.py)
        self.learn_order()

    def learn_order(self) -> None:
        """Look up a connected UDP socket and a TCP connection of our own on loopback, so the
        lookup order per transport is known before the first query (best effort: without
        loopback the first hit still teaches it)."""
        opened: list[socket.socket] = []
        try:
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            opened.append(udp)
            udp.connect(("127.0.0.1", 9))  # no packet: a UDP connect only sets the peer
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            opened.append(listener)
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            tcp = socket.create_connection(listener.getsockname(), timeout=0.5)
            opened.append(tcp)
            for sock, transport in ((udp, Transport.UDP), (tcp, Transport.TCP)):
                (local, lport), (remote, rport) = sock.getsockname(), sock.getpeername()
                self.find(transport, local, lport, remote, rport)
        except OSError:
            pass
        finally:
            for sock in opened:
                sock.close()

    def close(self) -> None:
        """Close the netlink socket."""
        self.sock.close()

    def _one(self, family: int, proto: int, src: bytes, sport: int, dst: bytes, dport: int) -> int | None:
        """One SOCK_DIAG_BY_FAMILY request (linux/inet_diag.h), its idiag_inode or None."""
        self.seq += 1
        sockid = (sport.to_bytes(2, "big") + dport.to_bytes(2, "big") + src.ljust(16, b"\0")
                  + dst.ljust(16, b"\0") + b"\0\0\0\0" + _NOCOOKIE)
        body = struct.pack("=BBBxI", family, proto, 0, 0xFFFFFFFF) + sockid
        self.sock.send(_NLH.pack(_NLH.size + len(body), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST, self.seq, 0) + body)
        data = self.sock.recv(8192)
        if len(data) < _NLH.size + _MSG.size:
            return None
        _len, mtype, _f, _seq, _pid = _NLH.unpack_from(data, 0)
        if mtype == NLMSG_ERROR:
            return None
        msg = _MSG.unpack_from(data, _NLH.size)
        inode: int = msg[-1]
        self.connected = msg[5] != b"\0\0"  # idiag_dport: the peer's port, 0 when unconnected
        return inode or None

    def find(self, transport: Transport, local: str, lport: int, remote: str, rport: int) -> int | None:
        """The inode of the socket ``local:lport`` <-> ``remote:rport``, or None when it is closed
        (``connected`` then tells whether that socket has a peer: an unconnected UDP socket
        bound to the port matches any remote)."""
        family = socket.AF_INET6 if ":" in local else socket.AF_INET
        lo, re_ = socket.inet_pton(family, local), socket.inet_pton(family, remote)
        proto = _PROTO[transport]
        known = self.order.get(transport)
        for local_first in ((known,) if known is not None else (True, False)):
            args = (lo, lport, re_, rport) if local_first else (re_, rport, lo, lport)
            inode = self._one(family, proto, *args)
            if inode:
                self.order[transport] = local_first
                return inode
        return None
