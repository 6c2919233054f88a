"""A hostile DNS server for the lab (run inside a namespace, on loopback only):
``python -m tests.integration.hostile_dns PORT ADDR [ADDR ...]`` (PORT 0: a free one, the
same on every address; "ready PORT" is printed once it listens).

Whatever it is asked, it answers like an attacker who controls the zone would:
- A: a CNAME chain whose targets carry ESC/OSC/BEL/C1 bytes, newlines, '|', backticks and
  '<b>' in their labels, ending in an A record (127.0.0.77);
- AAAA: NXDOMAIN with an SOA whose owner and mname carry the same bytes;
- every answer: an EDNS NSID option of terminal escapes;
- names under ``loop.``: a CNAME loop; under ``flood.``: 200 A records.
UDP and TCP, bounded: it exits after ``LIFETIME_S`` seconds.
"""

from __future__ import annotations

import socket
import struct
import sys
import threading
import time

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

LIFETIME_S = 120.0
EVIL = [b"e\x1b]0;pwned\x07", b"x\nverdict: ok|`x`<b>", b"\x9b2J\xe2\x80\xae", b"evil"]
NSID = b"\x1b]0;nsid-pwned\x07\r\nverdict: ok"


def _name(labels: list[bytes]) -> dns.name.Name:
    return dns.name.Name([*labels, b""])


def answer(wire: bytes) -> bytes:
    q = dns.message.from_wire(wire)
    r = dns.message.make_response(q)
    qname = q.question[0].name
    qtype = q.question[0].rdtype
    r.use_edns(0, options=[dns.edns.GenericOption(dns.edns.OptionType.NSID, NSID)])
    first = qname.labels[0] if qname.labels else b""
    if first == b"loop":
        r.answer.append(dns.rrset.from_text(qname, 60, "IN", "CNAME", qname.to_text()))
        return r.to_wire()
    if qtype == dns.rdatatype.A:
        targets = [_name(EVIL[:i + 1]) for i in range(len(EVIL))]
        prev = qname
        for t in targets:
            rr = dns.rrset.RRset(prev, dns.rdataclass.IN, dns.rdatatype.CNAME)
            rr.add(dns.rdata.from_wire(dns.rdataclass.IN, dns.rdatatype.CNAME, t.to_wire(), 0,
                                       len(t.to_wire())), 60)
            r.answer.append(rr)
            prev = t
        count = 200 if first == b"flood" else 1
        a = dns.rrset.RRset(prev, dns.rdataclass.IN, dns.rdatatype.A)
        for i in range(count):
            a.add(dns.rdata.from_text("IN", "A", f"127.0.{77 + i // 250}.{i % 250 + 1}"), 60)
        r.answer.append(a)
    else:
        r.set_rcode(dns.rcode.NXDOMAIN)
        owner = _name(EVIL)
        soa = dns.rrset.RRset(owner, dns.rdataclass.IN, dns.rdatatype.SOA)
        soa.add(dns.rdata.from_text("IN", "SOA", "ns.example. host.example. 1 2 3 4 5"), 60)
        r.authority.append(soa)
    return r.to_wire()


def serve_udp(sock: socket.socket, until: float) -> None:
    sock.settimeout(0.5)
    while time.monotonic() < until:
        try:
            data, peer = sock.recvfrom(4096)
        except OSError:
            continue
        try:
            sock.sendto(answer(data), peer)
        except Exception:  # noqa: BLE001 - a hostile server never stops for a bad query
            pass


def serve_tcp(sock: socket.socket, until: float) -> None:
    sock.settimeout(0.5)
    while time.monotonic() < until:
        try:
            conn, _ = sock.accept()
        except OSError:
            continue
        with conn:
            conn.settimeout(2)
            try:
                n = struct.unpack("!H", conn.recv(2))[0]
                data = b""
                while len(data) < n:
                    chunk = conn.recv(n - len(data))
                    if not chunk:
                        break
                    data += chunk
                out = answer(data)
                conn.sendall(struct.pack("!H", len(out)) + out)
            except Exception:  # noqa: BLE001
                pass


def main(argv: list[str]) -> None:
    until = time.monotonic() + LIFETIME_S
    threads = []
    port = int(argv[0])
    for addr in argv[1:]:
        fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
        u = socket.socket(fam, socket.SOCK_DGRAM)
        u.bind((addr, port))
        port = u.getsockname()[1]
        t = socket.socket(fam, socket.SOCK_STREAM)
        t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        t.bind((addr, port))
        t.listen(16)
        threads += [threading.Thread(target=serve_udp, args=(u, until), daemon=True),
                    threading.Thread(target=serve_tcp, args=(t, until), daemon=True)]
    for th in threads:
        th.start()
    print(f"ready {port}", flush=True)
    for th in threads:
        th.join()


if __name__ == "__main__":
    main(sys.argv[1:])
