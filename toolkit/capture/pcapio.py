"""Streaming pcap and pcapng reading and pcap writing, on ``struct`` only.

Reading records is the cheap part of offline analysis (DESIGN.md: 775k records/s); this
module never holds more than one record in memory (``rdpcap`` needs 2 GB for 200k
packets). Supported link types are listed in ``LINKTYPES``; the link layer itself is
peeled off by ``toolkit.capture.decode``.

Damage is data: a truncated last record, an impossible record length or an unknown pcapng
block ends the stream (or is skipped) and is counted in ``PcapReader.malformed`` with a
reason. Only a file that is not a capture at all (bad magic, no header) raises
``InputFileError``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType
from typing import NoReturn, Protocol

from toolkit.capture.linklayer import LINKTYPES as WRAPPED_LINKTYPES
from toolkit.errors import InputFileError

# Link types (https://www.tcpdump.org/linktypes.html) this package decodes.
LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276
LINKTYPE_LOOP = 108
LINKTYPES = {
    LINKTYPE_NULL: "null/loopback", LINKTYPE_ETHERNET: "ethernet", LINKTYPE_RAW: "raw-ip",
    12: "raw-ip", 14: "raw-ip", LINKTYPE_LOOP: "loop", LINKTYPE_LINUX_SLL: "linux-sll",
    LINKTYPE_IPV4: "ipv4", LINKTYPE_IPV6: "ipv6", LINKTYPE_LINUX_SLL2: "linux-sll2",
    **WRAPPED_LINKTYPES,  # NFLOG, PKTAP, PPP, Cisco HDLC (linklayer.py)
}

MAX_RECORD = 262_144  # tcpdump's MAXIMUM_SNAPLEN; a larger caplen means a damaged file
MAX_BLOCK = 16 << 20  # a pcapng block above this is damage, not data
MAX_MALFORMED_KEPT = 16
MAX_INTERFACES = 4096

_PCAP_MAGIC = {
    b"\xd4\xc3\xb2\xa1": ("<", 1_000),  # microseconds, little endian
    b"\xa1\xb2\xc3\xd4": (">", 1_000),
    b"\x4d\x3c\xb2\xa1": ("<", 1),  # nanoseconds
    b"\xa1\xb2\x3c\x4d": (">", 1),
}
_PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"


@dataclass(frozen=True)
class Record:
    """One captured frame: time in nanoseconds since the epoch, link type, bytes."""

    ts_ns: int
    linktype: int
    data: bytes
    orig_len: int

    @property
    def ts(self) -> float:
        """The capture time in seconds since the epoch."""
        return self.ts_ns / 1e9


class CaptureFormat(StrEnum):
    """The two capture file formats (pcap-savefile(5), draft-ietf-opsawg-pcapng)."""

    PCAP = "pcap"
    PCAPNG = "pcapng"


class ByteStream(Protocol):
    """What the reader reads from: a file, a pipe under the deadline, bytes in a test."""

    def read(self, n: int = -1, /) -> bytes:
        """Up to ``n`` bytes; fewer only at the end."""
        ...

    def close(self) -> None:
        """Release the stream."""
        ...


class PcapReader:
    """Iterate ``(ts_ns, linktype, data)`` tuples from a pcap or pcapng file.

    Tuples rather than Record objects on the hot path: the reader is the inner loop of
    offline analysis. ``records()`` yields ``Record`` objects for everyone else.
    Counters: ``packets`` (records yielded), ``malformed`` and ``malformed_reasons``.
    """

    def __init__(self, path: str, *, fileobj: ByteStream | None = None) -> None:
        self.path = path
        self.packets = 0
        self.malformed = 0
        self.malformed_reasons: list[str] = []
        self.format = CaptureFormat.PCAP
        self.linktypes: set[int] = set()
        if fileobj is None:
            from toolkit.inputs import open_stream

            # Regular files as before; FIFOs, pipes and devices read under the deadline.
            fileobj = open_stream(path, what="a pcap or pcapng file")
        self._fh: ByteStream = fileobj
        head = self._read(4)
        if len(head) < 4:
            self.close()
            raise InputFileError(path, "empty or too short to be a pcap/pcapng file")
        if head == _PCAPNG_SHB:
            self.format = CaptureFormat.PCAPNG
            self._head = head
        elif head in _PCAP_MAGIC:
            self._endian, self._ts_mult = _PCAP_MAGIC[head]
            rest = self._read(20)
            if len(rest) < 20:
                self.close()
                raise InputFileError(path, "truncated pcap file header")
            _vmaj, _vmin, _zone, _sig, snaplen, network = struct.unpack(self._endian + "HHiIII", rest)
            # The upper bits of 'network' carry FCS information (pcap-savefile(5)).
            self._linktype = network & 0x0FFFFFFF
            self.linktypes.add(self._linktype)
            self._rec = struct.Struct(self._endian + "IIII")
        else:
            self.close()
            raise InputFileError(path, "not a pcap or pcapng file (unknown magic %s)" % head.hex(),
                                 hint="podtriage reads tcpdump/tshark/Wireshark captures "
                                      "(pcap or pcapng)")

    # ------------------------------------------------------------------ plumbing
    def _read(self, n: int) -> bytes:
        try:
            return self._fh.read(n)
        except OSError as exc:
            raise InputFileError(self.path, f"read error: {exc.strerror or exc}") from None

    def _bad(self, reason: str) -> None:
        self.malformed += 1
        if len(self.malformed_reasons) < MAX_MALFORMED_KEPT:
            self.malformed_reasons.append(reason)

    def close(self) -> None:
        """Close the file (errors on close are not the capture's)."""
        try:
            self._fh.close()
        except OSError:
            pass

    def __enter__(self) -> "PcapReader":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __iter__(self) -> Iterator[tuple[int, int, bytes]]:
        if self.format == CaptureFormat.PCAPNG:
            return self._iter_pcapng()
        return self._iter_pcap()

    def records(self) -> Iterator[Record]:
        """The records as ``Record`` objects (everyone but the hot loop)."""
        for ts_ns, lt, data in self:
            yield Record(ts_ns, lt, data, len(data))

    # ------------------------------------------------------------------ pcap
    def _iter_pcap(self) -> Iterator[tuple[int, int, bytes]]:
        read = self._fh.read
        unpack = self._rec.unpack
        mult = self._ts_mult
        lt = self._linktype
        while True:  # bounded by the file size: every turn consumes >= 16 bytes or ends
            hdr = read(16)
            if len(hdr) < 16:
                if hdr:
                    self._bad(f"truncated record header at the end ({len(hdr)} of 16 bytes)")
                return
            sec, frac, caplen, _orig = unpack(hdr)
            if caplen > MAX_RECORD:
                self._bad(f"record {self.packets + 1}: impossible length {caplen}; rest of file skipped")
                return
            data = read(caplen)
            if len(data) < caplen:
                self._bad(f"record {self.packets + 1}: truncated ({len(data)} of {caplen} bytes)")
                return
            self.packets += 1
            yield (sec * 1_000_000_000 + frac * mult, lt, data)

    # ------------------------------------------------------------------ pcapng
    def _iter_pcapng(self) -> Iterator[tuple[int, int, bytes]]:
        sec = _Section()
        pending = self._head
        while True:  # each turn consumes one block (>= 12 bytes) or ends
            head = pending + self._read(8 - len(pending))
            pending = b""
            if len(head) < 8:
                if head:
                    self._bad("truncated block header at the end")
                return
            if head[:4] == _PCAPNG_SHB:
                if not self._section(head, sec):
                    return
                continue
            block = self._block(head, sec.endian)
            if block is None:
                return
            rec = self._packet(block[0], block[1], sec)
            if rec is not None:
                self.packets += 1
                yield rec

    def _section(self, head: bytes, sec: _Section) -> bool:
        """A Section Header Block: a new byte order, no interfaces yet. False: the end."""
        bom = self._read(4)
        if len(bom) < 4:
            self._bad("truncated section header block")
            return False
        if bom == b"\x4d\x3c\x2b\x1a":
            sec.endian = "<"
        elif bom == b"\x1a\x2b\x3c\x4d":
            sec.endian = ">"
        else:
            if self.packets == 0:
                raise InputFileError(self.path, "pcapng section header with a bad byte-order magic")
            self._bad("section header with a bad byte-order magic; rest of file skipped")
            return False
        (blen,) = struct.unpack(sec.endian + "I", head[4:8])
        if blen < 28 or blen % 4 or blen > MAX_BLOCK:
            self._bad(f"section header block of impossible length {blen}")
            return False
        body = self._read(blen - 12)
        if len(body) < blen - 12:
            self._bad("truncated section header block")
            return False
        sec.ifaces = []
        return True

    def _block(self, head: bytes, endian: str) -> tuple[int, bytes] | None:
        """The type and body (without the trailing length) of the block ``head`` starts;
        None when it is damaged beyond reading on."""
        btype, blen = struct.unpack(endian + "II", head)
        if blen < 12 or blen % 4 or blen > MAX_BLOCK:
            self._bad(f"block of impossible length {blen}; rest of file skipped")
            return None
        body = self._read(blen - 8)
        if len(body) < blen - 8:
            self._bad(f"truncated block (type {btype}: {len(body)} of {blen - 8} bytes)")
            return None
        return btype, body[:-4]

    def _packet(self, btype: int, body: bytes, sec: _Section) -> tuple[int, int, bytes] | None:
        """The packet a block carries (EPB, SPB, obsolete PB); an IDB declares an interface."""
        endian, ifaces = sec.endian, sec.ifaces
        if btype == 1:  # Interface Description Block
            if len(body) < 8:
                self._bad("short interface description block")
            elif len(ifaces) < MAX_INTERFACES:
                lt = struct.unpack_from(endian + "H", body, 0)[0]
                ifaces.append((lt, _if_tsresol(body[8:], endian)))
                self.linktypes.add(lt)
        elif btype == 6:  # Enhanced Packet Block
            if len(body) < 20:
                self._bad("short enhanced packet block")
                return None
            ifid, hi, lo, caplen, _orig = struct.unpack_from(endian + "IIIII", body, 0)
            if ifid >= len(ifaces):
                self._bad(f"packet on undeclared interface {ifid}")
            elif caplen > len(body) - 20:
                self._bad(f"packet block shorter than its captured length {caplen}")
            else:
                lt, per_sec = ifaces[ifid]
                units = (hi << 32) | lo
                ts_ns = units * 1_000_000_000 // per_sec if per_sec != 1_000_000_000 else units
                return (ts_ns, lt, body[20:20 + caplen])
        elif btype == 3:  # Simple Packet Block: no timestamp, interface 0
            if not ifaces or len(body) < 4:
                self._bad("simple packet block without an interface")
                return None
            (orig,) = struct.unpack_from(endian + "I", body, 0)
            return (0, ifaces[0][0], body[4:4 + min(orig, len(body) - 4)])
        elif btype == 2:  # obsolete Packet Block
            if len(body) < 20:
                self._bad("short packet block")
                return None
            ifid, _drops, hi, lo, caplen, _orig = struct.unpack_from(endian + "HHIIII", body, 0)
            if ifid >= len(ifaces) or caplen > len(body) - 20:
                self._bad("damaged obsolete packet block")
                return None
            lt, per_sec = ifaces[ifid]
            return ((((hi << 32) | lo) * 1_000_000_000) // per_sec, lt, body[20:20 + caplen])
        # other blocks (name resolution, statistics, custom, journal...) carry no packets
        return None


class _Section:
    """What a pcapng section declares: its byte order and interfaces (linktype, ts units
    per second)."""

    __slots__ = ("endian", "ifaces")

    def __init__(self) -> None:
        self.endian = "<"
        self.ifaces: list[tuple[int, int]] = []


def _if_tsresol(options: bytes, endian: str) -> int:
    """Units per second of an interface from its if_tsresol option (default microseconds)."""
    off = 0
    for _ in range(256):  # bounded: a block has a handful of options
        if off + 4 > len(options):
            break
        code, length = struct.unpack_from(endian + "HH", options, off)
        if code == 0:
            break
        if code == 9 and length >= 1 and off + 4 < len(options):
            v = options[off + 4]
            exp = v & 0x7F
            if v & 0x80:
                return 1 << min(exp, 62)
            return int(10 ** min(exp, 18))
        off += 4 + ((length + 3) & ~3)
    return 1_000_000


def open_capture(path: str) -> PcapReader:
    """Open a pcap or pcapng file; raises InputFileError when it is not one."""
    return PcapReader(path)


class PcapWriter:
    """A classic pcap writer (microsecond or nanosecond) that flushes every packet, so an
    interrupted capture leaves a file Wireshark and tcpdump read to the last packet."""

    def __init__(self, path: str, linktype: int, *, snaplen: int = MAX_RECORD, nanosecond: bool = True,
                 flush_each: bool = True) -> None:
        self.path = path
        self.linktype = linktype
        self.nanosecond = nanosecond
        self.flush_each = flush_each
        self.packets = 0
        try:
            self._fh = open(path, "wb", buffering=1 << 16)  # noqa: SIM115 - closed in close()
        except OSError as exc:
            raise InputFileError(path, f"cannot write: {exc.strerror or exc}") from None
        magic = 0xA1B23C4D if nanosecond else 0xA1B2C3D4
        try:
            self._fh.write(struct.pack("<IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype))
            self._fh.flush()
        except OSError as exc:  # a full disk (ENOSPC) is the environment, not a bug
            self._fail(exc)
        self._rec = struct.Struct("<IIII")
        self.snaplen = snaplen

    def write(self, ts_ns: int, data: bytes, orig_len: int | None = None) -> None:
        """One record (time in ns since the epoch), flushed when ``flush_each``."""
        sec, rest = divmod(ts_ns, 1_000_000_000)
        frac = rest if self.nanosecond else rest // 1000
        cap = data[: self.snaplen]
        try:
            self._fh.write(self._rec.pack(sec & 0xFFFFFFFF, frac, len(cap), orig_len or len(data)))
            self._fh.write(cap)
            if self.flush_each:
                self._fh.flush()
        except OSError as exc:
            self._fail(exc)
        self.packets += 1

    def _fail(self, exc: OSError) -> NoReturn:
        from toolkit.errors import OutputError

        try:
            self._fh.close()
        except OSError:
            pass
        raise OutputError(self.path, exc.strerror or str(exc)) from None

    def close(self) -> None:
        """Flush and close (idempotent)."""
        try:
            self._fh.flush()
            self._fh.close()
        except (OSError, ValueError):  # ValueError: already closed by _fail
            pass

    def __enter__(self) -> "PcapWriter":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def write_pcap(path: str, linktype: int, packets: Iterable[tuple[int, bytes]], *, nanosecond: bool = True) -> int:
    """Write ``(ts_ns, bytes)`` pairs to a pcap file (tests and benchmarks). Returns the count."""
    with PcapWriter(path, linktype, nanosecond=nanosecond, flush_each=False) as w:
        for ts_ns, data in packets:
            w.write(ts_ns, data)
        return w.packets
