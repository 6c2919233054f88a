"""How a DNS message travels: UDP datagrams, or TCP with RFC 1035 4.2.2 length framing.

Its own module, without dnspython, so that the offline capture decoder (toolkit/capture/)
and the query engine (toolkit/dns/query.py) share one enum without the decoder paying for
dnspython's import.
"""
from __future__ import annotations

from enum import StrEnum


class Transport(StrEnum):
    """How a question travels: UDP datagrams, or TCP with RFC 1035 4.2.2 length framing."""

    UDP = "udp"
    TCP = "tcp"
