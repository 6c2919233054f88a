"""A hostile stub DNS server for the lab (stdlib only): run it inside a lab namespace.

    ip netns exec NS python -m tests.lab.stubdns --listen 192.168.60.53 --port 5300 --mode silent

Modes:
  silent    UDP and TCP are open but nothing is ever answered (a hung server: a query
            waits out its whole timeout, TCP connects and then hears nothing)
  servfail  every question gets SERVFAIL over UDP and TCP (an upstream whose zones or
            recursion are broken)
  slow      every question gets SERVFAIL after --delay seconds

Bounded: it exits after --lifetime seconds (default 300) whatever happens.
"""
from __future__ import annotations

import argparse
import select
import socket
import struct
import time


def servfail(query: bytes) -> bytes | None:
    """Header: same id, QR=1, opcode copied, RD copied, RA=1, RCODE=2; question copied."""
    if len(query) < 12:
        return None
    qid, flags, qd = struct.unpack("!HHH", query[:6])
    if flags & 0x8000:
        return None  # a response: never answer those
    end = 12
    if qd:
        while end < len(query) and query[end] != 0:
            end += query[end] + 1
        end += 5  # root label + qtype + qclass
    question = query[12:end] if qd and end <= len(query) else b""
    rflags = 0x8000 | (flags & 0x7900) | 0x0080 | 2
    return struct.pack("!HHHHHH", qid, rflags, 1 if question else 0, 0, 0, 0) + question


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    ap.add_argument("--port", type=int, default=53)
    ap.add_argument("--mode", choices=("silent", "servfail", "slow"), default="silent")
    ap.add_argument("--delay", type=float, default=30.0)
    ap.add_argument("--lifetime", type=float, default=300.0)
    a = ap.parse_args()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    udp.bind((a.listen, a.port))
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind((a.listen, a.port))
    tcp.listen(64)
    print("ready", flush=True)
    conns: list[socket.socket] = []
    later: list[tuple[float, object, bytes, object]] = []  # (due, sock, data, addr)
    bufs: dict[socket.socket, bytes] = {}
    end = time.monotonic() + a.lifetime
    while time.monotonic() < end:
        now = time.monotonic()
        for item in [x for x in later if x[0] <= now]:
            later.remove(item)
            _due, sock, data, addr = item
            try:
                if addr is None:
                    sock.sendall(struct.pack("!H", len(data)) + data)
                else:
                    sock.sendto(data, addr)
            except OSError:
                pass
        readable, _, _ = select.select([udp, tcp, *conns], [], [], 0.05)
        for s in readable:
            if s is udp:
                data, addr = udp.recvfrom(65535)
                reply = servfail(data) if a.mode != "silent" else None
                if reply:
                    later.append((now + (a.delay if a.mode == "slow" else 0.0), udp, reply, addr))
            elif s is tcp:
                c, _ = tcp.accept()
                conns.append(c)
                bufs[c] = b""
            else:
                try:
                    chunk = s.recv(65535)
                except OSError:
                    chunk = b""
                if not chunk:
                    conns.remove(s)
                    bufs.pop(s, None)
                    s.close()
                    continue
                bufs[s] += chunk
                while len(bufs[s]) >= 2:
                    n = struct.unpack("!H", bufs[s][:2])[0]
                    if len(bufs[s]) < 2 + n:
                        break
                    msg, bufs[s] = bufs[s][2:2 + n], bufs[s][2 + n:]
                    reply = servfail(msg) if a.mode != "silent" else None
                    if reply:
                        later.append((now + (a.delay if a.mode == "slow" else 0.0), s, reply, None))


if __name__ == "__main__":
    main()
