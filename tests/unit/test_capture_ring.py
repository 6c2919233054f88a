"""The ring's structures against include/uapi/linux/if_packet.h's sizes, and who-asked's hint parser."""

from __future__ import annotations

import ctypes
import socket
import struct
import time

from toolkit.capture import hints, ring
from toolkit.dns.transport import Transport


def test_structures_have_the_kernel_sizes():
    # if_packet.h: tpacket_req3 is 7 unsigned ints; tpacket3_hdr 48 bytes (TPACKET3_HDRLEN's base);
    # tpacket_block_desc = version + offset_to_priv + tpacket_hdr_v1 (40 bytes, seq_num aligned to 8)
    assert ctypes.sizeof(ring.TpacketReq3) == 28
    assert ctypes.sizeof(ring.Tpacket3Hdr) == 48
    assert ctypes.sizeof(ring.TpacketBlockDesc) == 48
    assert ring.TpacketBlockDesc.block_status.offset == 8
    assert ring.TpacketBlockDesc.seq_num.offset == 24
    assert ctypes.sizeof(ring.TpacketStatsV3) == 12
    assert ring.Tpacket3Hdr.tp_net.offset == 26 and ring._SLL_AT == 48


def test_hint_parses_ipv4_udp_and_ipv6_tcp():
    ip4 = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 48, 1, 0, 64, 17, 0, socket.inet_aton("10.0.0.5"),
                      socket.inet_aton("10.233.0.3")) + struct.pack("!HHHHH", 40000, 53, 28, 0, 0xBEEF) + b"\0" * 18
    assert hints.parse(ip4) == ("10.0.0.5", 40000, "10.233.0.3", 53, Transport.UDP, 0xBEEF)  # the DNS ID
    assert hints.parse(ip4[:29]) == ("10.0.0.5", 40000, "10.233.0.3", 53, Transport.UDP, None)  # cut in the ID
    ip6 = (struct.pack("!IHBB", 6 << 28, 20, 6, 64) + socket.inet_pton(socket.AF_INET6, "fd00::5")
           + socket.inet_pton(socket.AF_INET6, "fd00::a") + struct.pack("!HH", 41000, 53) + b"\0" * 16)
    assert hints.parse(ip6) == ("fd00::5", 41000, "fd00::a", 53, Transport.TCP, None)


def test_hints_after_a_full_read_are_late():
    """A read that stopped at its limit left queries queued while the ring went on: the next
    read passes them as ``late`` (their answers may be handed over already, whoasked.py)."""
    def query(port: int) -> bytes:
        return (struct.pack("!BBHHHBBH4s4s", 0x45, 0, 30, 1, 0, 64, 17, 0, socket.inet_aton("10.0.0.5"),
                            socket.inet_aton("10.233.0.3")) + struct.pack("!HHHHH", port, 53, 10, 0, port))

    class Queue:
        def __init__(self, packets: list[bytes]) -> None:
            self.packets = packets

        def recv(self, _n: int) -> bytes:
            if not self.packets:
                raise BlockingIOError
            return self.packets.pop(0)

    h = object.__new__(hints.QueryHints)
    h.sock, h.behind = Queue([query(1), query(2), query(3)]), False  # type: ignore[assignment]
    seen: list[tuple[int, int | None, bool]] = []

    def saw(_s, sport, _d, _dp, _t, _ts, txid, _exact, late):
        seen.append((sport, txid, late))

    assert h.read(saw, time.time, limit=2) == 2 and h.behind
    assert h.read(saw, time.time, limit=2) == 1 and not h.behind
    assert seen == [(1, 1, False), (2, 2, False), (3, 3, True)]


def test_hint_ignores_what_it_cannot_read():
    assert hints.parse(b"") is None
    assert hints.parse(b"\x45" + b"\0" * 8 + b"\x01" + b"\0" * 30) is None  # ICMP
    assert hints.parse(b"\x60" + b"\0" * 19) is None  # a truncated IPv6 header
    assert hints.parse(b"\x45" + b"\0" * 8 + b"\x11" + b"\0" * 10) is None  # UDP without its ports


def test_hint_filter_names_every_port():
    assert hints.hint_filter((5353,)) == "udp dst port 53 or tcp dst port 53 or udp dst port 5353 or tcp dst port 5353"


def test_no_ring_on_a_weakly_ordered_cpu(monkeypatch):
    # arm64 needs a read barrier between a block's status and its frames; Python cannot issue
    # one, so the ring is not used there (the recvmsg path, with a note), and no socket is touched
    import platform

    from toolkit.capture import live

    monkeypatch.delenv(live.RING_ENV, raising=False)
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    notes: list[str] = []
    ring, why = live._open_ring(None, notes)  # type: ignore[arg-type]
    assert ring is None and why is not None and "aarch64" in why
    assert notes and "aarch64" in notes[0] and "recvmsg" in notes[0]
