"""Hostile input, class 8 (issue 23): wire details an attacker (or a strange network) uses.

(a) compression pointers: any length byte >= 0xC0 is a pointer (RFC 1035 4.1.4, the two top
    bits), so the question-name cache never serves one name for another; 0x40 and 0x80 are
    reserved label types (RFC 6891 retired EDNS0 extended labels): refused, counted malformed.
(b) overlapping IP fragments that never complete: bounded work per datagram; the datagram
    is dropped as Linux drops it (RFC 5722; CVE-2018-5391); the speed is a benchmark
    (scripts/benchmarks/hostile_inputs.py), the promises here are correctness and bounds.
(c) {$ENV} substitution in Corefiles has a size cap (CoreDNS has none: caddy's
    replaceEnvReferences), with a clear error.
(d) DNS behind many IPv6 extension headers or nested tunnels: a bounded chain is decoded,
    past the bound the frames are counted and said (note and finding), never a silent ok.
(e) an ICMP port-unreachable quoting only the 8-byte UDP header (all RFC 792 requires) is
    understood, not malformed.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from tests import hostile as H
from toolkit.capture import synth as S
from toolkit.capture.decode import MAX_IPV6_EXT, MAX_TUNNEL_DEPTH, Decoder, DnsEvent, IcmpEvent, Malformed
from toolkit.capture.pcapio import write_pcap
from toolkit.capture.reassembly import MAX_FRAGMENTS, IpReassembler

RAW = 101


def _events(*ips: bytes) -> tuple[Decoder, list]:
    dec = Decoder()
    out: list = []
    for i, ip in enumerate(ips):
        out += list(dec.decode(1_700_000_000_000_000_000 + i * 1000, RAW, ip))
    return dec, out


def _pointer_query(first: int, target: str, txid: int = 1) -> bytes:
    """A query whose question name is one pointer (FIRST, 0x20) to TARGET written at the
    offset the pointer names ((FIRST & 0x3F) << 8 | 0x20)."""
    at = ((first & 0x3F) << 8) | 0x20
    msg = struct.pack("!HHHHHH", txid, 0x0100, 1, 0, 0, 0) + bytes([first, 0x20]) + b"\x00\x01\x00\x01"
    msg += b"\x00" * (at - len(msg)) + S.encode_name(target)
    return S.udp("10.0.0.1", "10.0.0.53", 40000 + txid, 53, msg)


# ------------------------------------------------------------------ (a) pointers and label types

@pytest.mark.parametrize("first", [0xC0, 0xC1, 0xC2, 0xC7, 0xD5, 0xE0, 0xFF])
def test_any_pointer_byte_reads_its_own_target(first):
    dec, evs = _events(_pointer_query(first, "a.example.", 1), _pointer_query(first, "b.example.", 2),
                       _pointer_query(first, "a.example.", 3))
    names = [e.qname for e in evs if isinstance(e, DnsEvent)]
    assert names == ["a.example", "b.example", "a.example"], (names, [e for e in evs if isinstance(e, Malformed)])


@pytest.mark.parametrize("ln", [0x40, 0x41, 0x7F, 0x80, 0x81, 0xBF])
def test_reserved_label_types_are_refused(ln):
    msg = struct.pack("!HHHHHH", 7, 0x0100, 1, 0, 0, 0) + bytes([ln]) + b"a" * 8 + b"\x00\x00\x01\x00\x01"
    dec, evs = _events(S.udp("10.0.0.1", "10.0.0.53", 40000, 53, msg))
    assert dec.malformed == 1 and isinstance(evs[0], Malformed) and "label" in evs[0].reason


def test_plain_name_after_a_pointer_named_one_is_not_confused():
    plain = S.udp("10.0.0.1", "10.0.0.53", 40001, 53, S.dns_query(9, "c.example."))
    _, evs = _events(_pointer_query(0xC1, "a.example."), plain, _pointer_query(0xC1, "d.example.", 4), plain)
    assert [e.qname for e in evs] == ["a.example", "c.example", "d.example", "c.example"]


# ------------------------------------------------------------------ (b) fragments

def _pieces(payload: bytes, size: int) -> list[tuple[int, bool, bytes]]:
    return [(o, o + size < len(payload), payload[o:o + size]) for o in range(0, len(payload), size)]


@pytest.mark.parametrize("order", ["in-order", "reversed", "last-first", "with-duplicates"])
def test_fragmented_answer_is_reassembled_in_any_order(order):
    payload = bytes(range(256)) * 12
    parts = _pieces(payload, 512)
    if order == "reversed":
        parts = parts[::-1]
    elif order == "last-first":
        parts = parts[-1:] + parts[:-1]
    elif order == "with-duplicates":
        parts = [p for p in parts for _ in (0, 1)]
    r = IpReassembler()
    out = [r.add(("k",), 0.0, o, m, d) for o, m, d in parts]  # type: ignore[arg-type]
    done = [x for x in out if x is not None]
    assert done == [payload] and r.done == 1 and r.overlapping == 0


@pytest.mark.parametrize("overlap", [(0, 600), (100, 50), (511, 1), (1024, 1024)])
def test_overlapping_fragment_drops_the_datagram(overlap):
    payload = bytes(3072)
    r = IpReassembler()
    key = ("k",)
    for o, m, d in _pieces(payload, 1024)[:2]:
        r.add(key, 0.0, o, m, d)  # type: ignore[arg-type]
    off, n = overlap
    if (off, n) == (1024, 1024):
        n = 1000  # same start, other length: an overlap, not a repeat
    assert r.add(key, 0.0, off, True, bytes(n)) is None  # type: ignore[arg-type]
    assert r.overlapping == 1 and key not in r.pending
    assert r.add(key, 0.0, 2048, False, bytes(1024)) is None  # type: ignore[arg-type]


def test_fragments_per_datagram_are_capped():
    r = IpReassembler()
    for i in range(MAX_FRAGMENTS + 50):
        r.add(("k",), 0.0, i * 16, True, bytes(8))  # type: ignore[arg-type]
    # the piece past the cap drops the datagram; what follows starts a new one
    assert r.expired == 1 and len(r.pending[("k",)].starts) == 49


def test_last_fragment_that_contradicts_the_others_drops_the_datagram():
    r = IpReassembler()
    r.add(("k",), 0.0, 0, True, bytes(1024))  # type: ignore[arg-type]
    r.add(("k",), 0.0, 2048, True, bytes(1024))  # type: ignore[arg-type]
    assert r.add(("k",), 0.0, 1024, False, bytes(512)) is None  # type: ignore[arg-type]
    assert ("k",) not in r.pending


def test_overlapping_fragment_flood_through_the_cli(tmp_path):
    pcap = H.overlapping_fragments_pcap(tmp_path / "frag.pcap", datagrams=20, per=1500)
    o = H.run_cli(["capture", "--read", str(pcap), "-o", "json", "--deadline", "20"])
    H.check(o, codes={0, 1, 5}, deadline=20.0)
    doc = json.loads(o.stdout)
    dec = doc["decoder"]
    assert dec["ip_fragments"] == 20 * 1501 and dec["ip_fragments_overlapping"] > 0
    assert dec["dns_messages"] == 400 and doc["verdict"] == "ok"


# ------------------------------------------------------------------ (c) {$ENV} size cap

@pytest.mark.parametrize("cmd", [("corefile", "lint", "{f}"), ("corefile", "trace", "a.example.", "-c", "{f}")],
                         ids=["lint", "trace"])
@pytest.mark.parametrize("shape", ["many-placeholders", "one-token-many-times", "import-pattern"])
def test_env_expansion_over_the_cap_is_refused(tmp_path, cmd, shape):
    f = tmp_path / "Corefile"
    if shape == "many-placeholders":
        f.write_text(". {\n" + " forward . {$A}\n" * 1000 + "}\n")
    elif shape == "one-token-many-times":
        f.write_text(". {\n forward . " + "{$A}" * 400 + "\n}\n")
    else:
        f.write_text(". {\n" + " import {$A}{$A}\n" * 500 + "}\n")
    big = "a" * 100_000
    o = H.run_cli([a.replace("{f}", str(f)) for a in cmd] + ["--env", f"A={big}", "-o", "json"])
    H.check(o, codes={3}, rss_mb=150, error_has="substitution adds more than 4 MiB")


def test_env_expansion_under_the_cap_still_substitutes(tmp_path):
    f = tmp_path / "Corefile"
    f.write_text(". {\n forward . {$UP} {$UP}\n}\n")
    o = H.run_cli(["corefile", "trace", "a.example.", "-c", str(f), "--env", "UP=10.9.9.9", "-o", "json"])
    H.check(o, codes={0, 1, 5})
    assert "10.9.9.9" in o.text


# ------------------------------------------------------------------ (d) deep header chains

def _dns_pair6(n_ext: int) -> list[bytes]:
    q = H.ipv6_ext_chain(n_ext, H.udp6(40000, 53, S.dns_query(1, "deep.example.")))
    r = H.ipv6_ext_chain(n_ext, H.udp6(53, 40000, S.dns_response(1, "deep.example.", addresses=("10.1.1.1",))),
                         src="fd00::53", dst="fd00::1")
    return [q, r]


@pytest.mark.parametrize("n", [0, 1, MAX_IPV6_EXT])
def test_dns_behind_a_bounded_chain_of_extension_headers_is_decoded(n):
    dec, evs = _events(*_dns_pair6(n))
    assert [e.qname for e in evs if isinstance(e, DnsEvent)] == ["deep.example"] * 2


@pytest.mark.parametrize("n", [MAX_IPV6_EXT + 1, MAX_IPV6_EXT + 2, 30])
def test_past_the_bound_frames_are_counted_not_dropped_silently(n):
    dec, evs = _events(*_dns_pair6(n))
    assert not evs and dec.too_deep == {"ipv6-extension-headers": 2}
    assert dec.counters()["not_analysed_ipv6_extension_headers"] == 2


@pytest.mark.parametrize("depth", [1, MAX_TUNNEL_DEPTH])
def test_dns_in_nested_tunnels_within_the_bound(depth):
    inner = S.udp("10.0.0.1", "10.0.0.53", 40000, 53, S.dns_query(1, "t.example."))
    dec, evs = _events(H.ipip_nested(depth, inner))
    assert [e.qname for e in evs] == ["t.example"] and not dec.too_deep


@pytest.mark.parametrize("depth", [MAX_TUNNEL_DEPTH + 1, MAX_TUNNEL_DEPTH + 5])
def test_tunnels_past_the_bound_are_counted(depth):
    inner = S.udp("10.0.0.1", "10.0.0.53", 40000, 53, S.dns_query(1, "t.example."))
    dec, evs = _events(H.ipip_nested(depth, inner))
    assert not evs and dec.too_deep == {"tunnels": 1}


@pytest.mark.parametrize("kind", ["ext", "tunnel"])
@pytest.mark.parametrize("fmt", ["json", "table", "markdown"])
def test_capture_of_only_deep_dns_is_never_ok(tmp_path, kind, fmt):
    t0 = 1_700_000_000_000_000_000
    if kind == "ext":
        ips = [ip for i in range(5) for ip in _dns_pair6(MAX_IPV6_EXT + 1)]
    else:
        inner = S.udp("10.0.0.1", "10.0.0.53", 40000, 53, S.dns_query(1, "t.example."))
        ips = [H.ipip_nested(MAX_TUNNEL_DEPTH + 1, inner)] * 10
    pcap = tmp_path / "deep.pcap"
    write_pcap(str(pcap), RAW, [(t0 + i * 1_000_000, ip) for i, ip in enumerate(ips)])
    o = H.run_cli(["capture", "--read", str(pcap), "-o", fmt])
    H.check(o, codes={1, 5})
    assert "not analysed" in o.text
    if fmt == "json":
        doc = json.loads(o.stdout)
        assert doc["verdict"] != "ok"
        assert any(f["code"] == "capture-not-analysed" for f in doc["findings"])


def test_a_few_deep_frames_among_plenty_of_dns_is_a_warning(tmp_path):
    t0 = 1_700_000_000_000_000_000
    pkts = [(t0 + i, ip) for i, ip in enumerate(_dns_pair6(MAX_IPV6_EXT + 1))]
    for i in range(20):
        pkts.append((t0 + 10_000 + i * 2_000_000, S.udp("10.0.0.1", "10.0.0.53", 41000 + i, 53,
                                                          S.dns_query(i, "ok.example."))))
        pkts.append((t0 + 10_000 + i * 2_000_000 + 500_000,
                     S.udp("10.0.0.53", "10.0.0.1", 53, 41000 + i,
                           S.dns_response(i, "ok.example.", addresses=("10.2.2.2",)))))
    pcap = tmp_path / "mixed.pcap"
    write_pcap(str(pcap), RAW, pkts)
    o = H.run_cli(["capture", "--read", str(pcap), "-o", "json"])
    H.check(o, codes={0, 1, 5})
    doc = json.loads(o.stdout)
    f = [x for x in doc["findings"] if x["code"] == "capture-not-analysed"]
    assert f and f[0]["severity"] == "warning" and f[0]["data"]["frames"] == 2


# ------------------------------------------------------------------ (e) ICMP quoting 8 bytes

def _quoted(ulen: int | None) -> bytes:
    ip = S.udp("10.0.0.1", "10.0.0.53", 40000, 53, S.dns_query(5, "gone.example."))  # IPv4 + UDP
    udp_hdr = bytearray(ip[20:28])
    if ulen is not None:
        udp_hdr[4:6] = struct.pack("!H", ulen)
    return ip[:20] + bytes(udp_hdr)


@pytest.mark.parametrize("ulen", [None, 8, 9, 19, 0, 65535], ids=lambda u: f"udp-length-{u}")
def test_icmp_quoting_only_the_udp_header_is_understood(ulen):
    icmp = S.icmp_error("10.0.0.53", "10.0.0.1", _quoted(ulen))
    dec, evs = _events(icmp)
    assert dec.malformed == 0 and dec.icmp_errors == 1
    ev = evs[0]
    assert isinstance(ev, IcmpEvent) and ev.q_dport == 53 and ev.q_sport == 40000 and ev.txid is None


@pytest.mark.parametrize("extra", [1, 2, 11, 12])
def test_icmp_quoting_part_of_the_dns_header(extra):
    ip = S.udp("10.0.0.1", "10.0.0.53", 40000, 53, S.dns_query(0x1234, "gone.example."))
    dec, evs = _events(S.icmp_error("10.0.0.53", "10.0.0.1", ip[:28 + extra]))
    assert dec.malformed == 0 and isinstance(evs[0], IcmpEvent)
    assert evs[0].txid == (0x1234 if extra >= 2 else None)


def test_icmp_8_byte_quote_explains_the_silence_in_a_capture(tmp_path):
    t0 = 1_700_000_000_000_000_000
    q = S.udp("10.0.0.1", "10.0.0.53", 40000, 53, S.dns_query(5, "gone.example."))
    pkts = [(t0, q),
            (t0 + 1_000_000, S.icmp_error("10.0.0.53", "10.0.0.1", _quoted(8)))]
    pcap = tmp_path / "icmp.pcap"
    write_pcap(str(pcap), RAW, pkts)
    o = H.run_cli(["capture", "--read", str(pcap), "-o", "json"])
    H.check(o, codes={0, 1, 5})
    doc = json.loads(o.stdout)
    assert doc["decoder"]["malformed"] == 0 and doc["decoder"]["icmp_errors"] == 1
    assert not any(f["code"] == "capture-malformed" for f in doc["findings"])


@pytest.mark.parametrize("ulen", [8, 9, 13, 19], ids=lambda u: f"udp-length-{u}")
def test_icmp_quoting_the_whole_query_with_a_short_udp_length(ulen):
    """The quoted UDP header's length says 8 (or less than a DNS header) while more bytes
    follow: the length decides what the datagram held, and a short one is no damage."""
    ip = bytearray(S.udp("10.0.0.1", "10.0.0.53", 40000, 53, S.dns_query(0x4321, "gone.example.")))
    ip[24:26] = struct.pack("!H", ulen)
    dec, evs = _events(S.icmp_error("10.0.0.53", "10.0.0.1", bytes(ip)))
    assert dec.malformed == 0 and dec.icmp_errors == 1 and isinstance(evs[0], IcmpEvent)
    assert evs[0].txid == (0x4321 if ulen >= 10 else None)
