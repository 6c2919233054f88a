"""A TPACKET_V3 memory-mapped receive ring on a packet socket: a block of frames per wake-up.

Why: one ``recvmsg`` per packet (a syscall, a bytes object for the data, another for the
ancillary timestamp and a tuple for the address) held ~20k packets/s here. With TPACKET_V3
the kernel writes frames back to back into blocks of a shared ring and hands a whole block
over at once (when it is full, or after ``retire_blk_tov`` ms so a quiet link still delivers,
net/packet/af_packet.c ``prb_retire_rx_blk_timer_expired``); the reader walks the block's
frames without a syscall and hands the block back by writing TP_STATUS_KERNEL to its status
(Documentation/networking/packet_mmap.rst, "TPACKET_V3 example").

The layouts are include/uapi/linux/if_packet.h's (``struct tpacket_req3``,
``struct tpacket_block_desc`` / ``tpacket_hdr_v1``, ``struct tpacket3_hdr``,
``struct tpacket_stats_v3``); ``struct sockaddr_ll`` (if_packet.h too) follows each frame header
at TPACKET_ALIGN(sizeof(struct tpacket3_hdr)) (af_packet.c ``tpacket_rcv``: ``sll = h.raw +
TPACKET_ALIGN(hdrlen)``). On a SOCK_DGRAM socket ``tp_net`` (= ``tp_mac``) is the IP header.

Memory ordering: the kernel publishes a block with ``smp_wmb()`` before setting its status
(``prb_close_block``); x86's ordering makes the status load-then-data loads safe from Python.
"""

from __future__ import annotations

import ctypes
import mmap
import select
import socket
import struct

SOL_PACKET = 263
PACKET_RX_RING = 5
PACKET_STATISTICS = 6
PACKET_VERSION = 10
TPACKET_V3 = 2
TP_STATUS_KERNEL = 0
TP_STATUS_USER = 1 << 0
TPACKET_ALIGNMENT = 16

BLOCK_SIZE = 1 << 17  # 128 KiB: a power-of-two number of pages (packet_set_ring), a 64 KiB GRO frame fits
BLOCK_COUNT = 256  # 32 MiB as the recvmsg path's SO_RCVBUFFORCE; at low rates 256 x 4 ms = 1 s of stall
FRAME_SIZE = 2048  # V3 packs frames by tp_next_offset; tp_frame_size only sizes tp_frame_nr
RETIRE_TOV_MS = 4  # a block with packets is handed over after at most this long (who-asked races glibc)


class TpacketReq3(ctypes.Structure):
    """``struct tpacket_req3`` (if_packet.h): the PACKET_RX_RING request."""

    _fields_ = [("tp_block_size", ctypes.c_uint), ("tp_block_nr", ctypes.c_uint),
                ("tp_frame_size", ctypes.c_uint), ("tp_frame_nr", ctypes.c_uint),
                ("tp_retire_blk_tov", ctypes.c_uint), ("tp_sizeof_priv", ctypes.c_uint),
                ("tp_feature_req_word", ctypes.c_uint)]


class TpacketBdTs(ctypes.Structure):
    """``struct tpacket_bd_ts``: (seconds, usec or nsec) of a block's first/last frame."""

    _fields_ = [("ts_sec", ctypes.c_uint), ("ts_nsec", ctypes.c_uint)]


class TpacketBlockDesc(ctypes.Structure):
    """``struct tpacket_block_desc`` with its ``tpacket_hdr_v1`` inlined: a block's header."""

    _fields_ = [("version", ctypes.c_uint32), ("offset_to_priv", ctypes.c_uint32),
                ("block_status", ctypes.c_uint32), ("num_pkts", ctypes.c_uint32),
                ("offset_to_first_pkt", ctypes.c_uint32), ("blk_len", ctypes.c_uint32),
                ("seq_num", ctypes.c_uint64), ("ts_first_pkt", TpacketBdTs), ("ts_last_pkt", TpacketBdTs)]


class Tpacket3Hdr(ctypes.Structure):
    """``struct tpacket3_hdr``: one frame's header (hv1 and padding kept for the size)."""

    _fields_ = [("tp_next_offset", ctypes.c_uint32), ("tp_sec", ctypes.c_uint32), ("tp_nsec", ctypes.c_uint32),
                ("tp_snaplen", ctypes.c_uint32), ("tp_len", ctypes.c_uint32), ("tp_status", ctypes.c_uint32),
                ("tp_mac", ctypes.c_uint16), ("tp_net", ctypes.c_uint16),
                ("tp_rxhash", ctypes.c_uint32), ("tp_vlan_tci", ctypes.c_uint32), ("tp_vlan_tpid", ctypes.c_uint16),
                ("tp_hv1_padding", ctypes.c_uint16), ("tp_padding", ctypes.c_uint8 * 8)]


class TpacketStatsV3(ctypes.Structure):
    """``struct tpacket_stats_v3``: PACKET_STATISTICS's answer once the socket is V3."""

    _fields_ = [("tp_packets", ctypes.c_uint), ("tp_drops", ctypes.c_uint), ("tp_freeze_q_cnt", ctypes.c_uint)]


def _align(n: int) -> int:
    return (n + TPACKET_ALIGNMENT - 1) & ~(TPACKET_ALIGNMENT - 1)


_BLK_STATUS = TpacketBlockDesc.block_status.offset
_BLK = struct.Struct("=III")  # block_status, num_pkts, offset_to_first_pkt
_BLK_STATUS_FMT = struct.Struct("=I")
_HDR = struct.Struct("=IIIIIIHH")  # tp_next_offset .. tp_net (the fields read per frame)
_SLL_AT = _align(ctypes.sizeof(Tpacket3Hdr))
# struct sockaddr_ll: family, protocol (network order, kept as bytes), ifindex, hatype, pkttype, halen, addr
_SOCKADDR_LL = struct.Struct("=H2siHBB8s")
_SLL_TYPES = struct.Struct("!HHH")  # the cooked header's packet type, ARPHRD, address length

Frame = tuple[int, bytes, bytes, int]  # (kernel time ns, cooked SLL header, IP packet, original length)


class Ring:
    """The mapped ring of one packet socket and the reader's position in it."""

    def __init__(self, sock: socket.socket, *, block_size: int | None = None, block_count: int | None = None,
                 retire_ms: int | None = None) -> None:
        """Switch ``sock`` to TPACKET_V3 and map its RX ring; OSError when the kernel refuses.

        The sizes default to the module's constants, read at the call (tests shrink them)."""
        block_size = block_size or BLOCK_SIZE
        block_count = block_count or BLOCK_COUNT
        retire_ms = retire_ms or RETIRE_TOV_MS
        sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)
        req = TpacketReq3(tp_block_size=block_size, tp_block_nr=block_count, tp_frame_size=FRAME_SIZE,
                          tp_frame_nr=block_size * block_count // FRAME_SIZE, tp_retire_blk_tov=retire_ms)
        sock.setsockopt(SOL_PACKET, PACKET_RX_RING, bytes(req))
        self.mm = mmap.mmap(sock.fileno(), block_size * block_count, mmap.MAP_SHARED,
                            mmap.PROT_READ | mmap.PROT_WRITE)
        self.sock = sock
        self.block_size, self.block_count, self.retire_s = block_size, block_count, retire_ms / 1000
        self.index = 0
        self.poller = select.poll()
        self.poller.register(sock.fileno(), select.POLLIN | select.POLLERR)
        self.blocks = 0

    def watch(self, fd: int) -> None:
        """Wake ``wait`` when ``fd`` is readable too (who-asked's query socket, hints.py)."""
        self.poller.register(fd, select.POLLIN)

    def ready(self) -> bool:
        """True when the block at the reader's position is the user's."""
        status: int = _BLK_STATUS_FMT.unpack_from(self.mm, self.index * self.block_size + _BLK_STATUS)[0]
        return bool(status & TP_STATUS_USER)

    def wait(self, timeout_s: float) -> bool:
        """A block is ready, waiting at most ``timeout_s`` (poll(2) on the socket) for one."""
        if self.ready():
            return True
        try:
            self.poller.poll(max(0, int(timeout_s * 1000)))
        except InterruptedError:  # pragma: no cover - PEP 475 retries unless the handler raised
            pass
        return self.ready()

    def frames(self, *, sll: bool = True) -> list[Frame]:
        """The ready block's frames, copied out in one loop (the block is then handed back);
        ``sll=False``: no cooked header (empty bytes), when no pcap is written (2 us a frame)."""
        mm = self.mm
        base = self.index * self.block_size
        _status, count, off = _BLK.unpack_from(mm, base + _BLK_STATUS)
        hdr = _HDR.unpack_from
        out: list[Frame] = []
        append = out.append
        at = base + off
        for _ in range(count):
            nxt, sec, nsec, snaplen, length, _st, _mac, net = hdr(mm, at)
            start = at + net
            append((sec * 1_000_000_000 + nsec, _cooked(mm, at) if sll else b"", mm[start:start + snaplen], length))
            at += nxt
        self.release()
        return out

    def release(self) -> None:
        """Hand the block at the reader's position back to the kernel and move on."""
        _BLK_STATUS_FMT.pack_into(self.mm, self.index * self.block_size + _BLK_STATUS, TP_STATUS_KERNEL)
        self.index = (self.index + 1) % self.block_count
        self.blocks += 1

    def discard(self) -> int:
        """Hand back every ready block unread (the frames queued before the capture began)."""
        n = 0
        while self.ready() and n < self.block_count:
            self.release()
            n += 1
        return n

    def close(self) -> None:
        """Unmap the ring (before the socket closes)."""
        self.mm.close()


def _cooked(mm: mmap.mmap, at: int) -> bytes:
    """The Linux cooked (SLL) header of the frame at ``at``, from its ``struct sockaddr_ll``."""
    _fam, proto, _ifindex, hatype, pkttype, halen, addr = _SOCKADDR_LL.unpack_from(mm, at + _SLL_AT)
    halen = min(halen, 8)
    head: bytes = _SLL_TYPES.pack(pkttype, hatype, halen) + addr[:halen].ljust(8, b"\0") + proto
    return head


def stats_v3(sock: socket.socket) -> tuple[int, int, int]:
    """PACKET_STATISTICS on a V3 socket: (packets, drops, times the queue froze); resets them.

    af_packet.c ``packet_getsockopt`` adds tp_drops into tp_packets, as for V1/V2."""
    try:
        raw = sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, ctypes.sizeof(TpacketStatsV3))
    except OSError:
        return 0, 0, 0
    st = TpacketStatsV3.from_buffer_copy(raw.ljust(ctypes.sizeof(TpacketStatsV3), b"\0"))
    return int(st.tp_packets), int(st.tp_drops), int(st.tp_freeze_q_cnt)
