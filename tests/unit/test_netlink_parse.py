"""The plain-socket netlink decoders on hostile bytes: a truncated or garbled kernel message
ends in None, a smaller dict, or an observation error (ValueError / struct.error, which the
snapshot's best_effort turns into a note), never in a bug's exception. The real-kernel
comparison with pyroute2 is tests/integration/test_netlink_lab.py."""
from __future__ import annotations

import random
import socket
import struct

from toolkit.conntrack.ctnetlink import entry_dict
from toolkit.errors import is_observation_error
from toolkit.sysinfo.netlink import attr, attrs


def _tuple(src: str, dst: str, sport: int, dport: int, proto: int) -> bytes:
    ip = attr(1, socket.inet_aton(src)) + attr(2, socket.inet_aton(dst))
    pr = attr(1, bytes([proto])) + attr(2, struct.pack("!H", sport)) + attr(3, struct.pack("!H", dport))
    return attr(1 | 0x8000, ip) + attr(2 | 0x8000, pr)


# one UDP entry as the kernel lays it out (nfnetlink_conntrack.h), DNATed 10.233.0.3 -> 10.244.0.3
ENTRY = (struct.pack("!BBH", socket.AF_INET, 0, 0)
         + attr(1 | 0x8000, _tuple("10.244.1.10", "10.233.0.3", 40001, 53, 17))
         + attr(2 | 0x8000, _tuple("10.244.0.3", "10.244.1.10", 53, 40001, 17))
         + attr(3, struct.pack("!I", 0x18e)) + attr(7, struct.pack("!I", 27)))


def test_entry_decodes():
    d = entry_dict(ENTRY)
    assert d == {"family": 2, "proto": 17, "status": 0x18e, "timeout": 27,
                 "orig": {"src": "10.244.1.10", "dst": "10.233.0.3", "sport": 40001, "dport": 53},
                 "reply": {"src": "10.244.0.3", "dst": "10.244.1.10", "sport": 53, "dport": 40001}}


def test_attrs_stop_at_a_bad_length():
    assert attrs(b"\x02\x00\x01\x00" + b"\xff" * 8) == {}  # nla_len below the header: stop
    assert attrs(attr(5, b"abc") + b"\x01") == {5: b"abc"}


def test_truncated_and_garbled_entries_are_observation_errors_at_worst():
    rng = random.Random(27)
    for cut in range(len(ENTRY)):
        _try(ENTRY[:cut])
    for _ in range(3000):
        b = bytearray(ENTRY)
        for _ in range(rng.randint(1, 6)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        _try(bytes(b))


def _try(body: bytes) -> None:
    try:
        entry_dict(body)
    except Exception as exc:  # noqa: BLE001 - the assertion is which kind it is
        assert is_observation_error(exc, (ValueError,)), repr(exc)
