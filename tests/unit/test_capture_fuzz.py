"""Fuzz the decoder, the analyzer and the pcap reader: random and mutated input, no exception
escapes (the reader may only refuse a file at open with InputFileError)."""

from __future__ import annotations

import io
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toolkit.capture import synth as S
from toolkit.capture.analysis import Analyzer
from toolkit.capture.decode import Decoder
from toolkit.capture.dnswire import DnsEvent
from toolkit.capture.pcapio import PcapReader
from toolkit.errors import InputFileError

LINKTYPES = [0, 1, 12, 101, 108, 113, 228, 229, 276, 147]
T0 = 1_700_000_000_000_000_000


def _seeds() -> list[tuple[int, bytes]]:
    q = S.udp("10.0.0.1", "10.0.0.53", 40000, 53, S.dns_query(1, "a.b.example", 28))
    r = S.udp("10.0.0.53", "10.0.0.1", 53, 40000, S.dns_response(1, "a.b.example", 1, addresses=("1.2.3.4",)))
    m = S.dns_query(2, "t.example")
    t = S.tcp("10.0.0.1", "10.0.0.53", 45000, 53, 7, 0, "PA", len(m).to_bytes(2, "big") + m)
    i = S.icmp_error("10.0.0.53", "10.0.0.1", q)
    v6 = S.udp("fd00::1", "fd00::53", 40000, 53, S.dns_query(3, "v6.example", 1))
    i6 = S.icmp_error("fd00::53", "fd00::1", v6)
    out = []
    for ip in (q, r, t, i, v6, i6):
        out += [(1, S.frame(ip)), (113, S.frame(ip, 113)), (276, S.frame(ip, 276)), (101, ip),
                (1, S.frame(ip, 1, vlans=(5, 6)))]
    return out


SEEDS = _seeds()


def _feed(frames):
    d = Decoder((53, 5353))
    a = Analyzer()
    t = T0
    for lt, data in frames:
        t += 1_000_000
        for ev in d.decode(t, lt, data):
            a.feed(ev)
            if isinstance(ev, DnsEvent):
                ev.addresses()
    a.finish()
    a.summary()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(LINKTYPES), st.binary(max_size=200)), max_size=10))
def test_random_frames(frames):
    _feed(frames)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, len(SEEDS) - 1), st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=8),
       st.integers(0, 400))
def test_mutated_frames(idx, flips, cut):
    lt, data = SEEDS[idx]
    buf = bytearray(data)
    for pos, val in flips:
        if buf:
            buf[pos % len(buf)] = val
    _feed([(lt, bytes(buf[: max(cut, 1)])), (lt, bytes(buf)), SEEDS[(idx + 1) % len(SEEDS)]])


def _pcap(frames, nano=True) -> bytes:
    out = struct.pack("<IHHiIII", 0xA1B23C4D if nano else 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    for i, (_lt, f) in enumerate(frames):
        out += struct.pack("<IIII", 1_700_000_000 + i, 0, len(f), len(f)) + f
    return out


def _read_all(blob: bytes) -> None:
    try:
        r = PcapReader("fuzz.pcap", fileobj=io.BufferedReader(io.BytesIO(blob)))
    except InputFileError:
        return
    d = Decoder()
    try:
        for ts, lt, data in r:
            d.decode(ts, lt, data)
    except InputFileError:  # a file that is not a capture at all: the clean exit-3 path
        assert r.packets == 0
    assert r.malformed >= 0


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=400))
def test_random_files(blob):
    _read_all(blob)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 255)), max_size=10), st.integers(0, 3000),
       st.booleans())
def test_mutated_files(flips, cut, pcapng_header):
    blob = bytearray(_pcap(SEEDS[:12]))
    if pcapng_header:  # a minimal pcapng: SHB + IDB + one EPB
        f = SEEDS[0][1]
        shb = struct.pack("<IIIHHq", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1) + struct.pack("<I", 28)
        idb = struct.pack("<IIHHI", 1, 20, 1, 0, 65535) + struct.pack("<I", 20)
        pad = (-len(f)) % 4
        blen = 32 + len(f) + pad
        epb = struct.pack("<IIIIIII", 6, blen, 0, 0, 0, len(f), len(f)) + f + b"\0" * pad + struct.pack("<I", blen)
        blob = bytearray(shb + idb + epb)
    for pos, val in flips:
        blob[pos % len(blob)] = val
    _read_all(bytes(blob[: max(cut, 4)]))
