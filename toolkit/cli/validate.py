"""Option values checked once, at the CLI boundary: a bad value is Typer's usage error
(exit 2, "Invalid value for '--opt': why"), never an exception deep in the library.

Each function here is a Typer ``parser=``: it takes the raw text (or the default value,
which Typer passes through the parser too) and returns the parsed value or raises
``typer.BadParameter``. Cheap to import (typer and the stdlib only), so `--help` stays fast.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import typer

from toolkit.names import NameProblem, check_address, check_name, parse_endpoint


def seconds(low: float, high: float, *, low_open: bool = False) -> Callable[[object], float]:
    """A finite number of seconds in [low, high] (``low_open``: low itself excluded).

    click's FloatRange lets ``nan`` through (every comparison with nan is false): a
    ``--deadline nan`` then marks every query as past its deadline."""

    def parse(value: object) -> float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        else:
            text = str(value).strip()
            try:
                number = float(text)
            except ValueError:
                raise typer.BadParameter(f"{text!r} is not a number of seconds") from None
        if not math.isfinite(number):
            raise typer.BadParameter(f"{value!r} is not a finite number of seconds")
        if number < low or (low_open and number == low) or number > high:
            bound = f"more than {low:g}" if low_open else f"at least {low:g}"
            raise typer.BadParameter(f"{number:g} is out of range: {bound} and at most {high:g} "
                                     f"seconds")
        return number

    return parse


def dns_name(value: object) -> str:
    """A host name: LDH/underscore/wildcard labels or IDN, no empty label, labels of at most
    63 and names of at most 253 characters (RFC 1035)."""
    try:
        return check_name(str(value))
    except NameProblem as exc:
        raise typer.BadParameter(str(exc)) from None


def dns_name_or_ip(value: object) -> str:
    """An IP address (as ``ip_address``) or else a host name (as ``dns_name``)."""
    text = str(value)
    try:
        return check_address(text)
    except NameProblem:
        pass
    return dns_name(text)


def ip_address(value: object) -> str:
    """An IP address, with a ``%IF`` scope only on an IPv6 link-local one."""
    try:
        return check_address(str(value))
    except NameProblem as exc:
        raise typer.BadParameter(str(exc)) from None


def endpoints(value: object) -> str:
    """One or more (comma-separated) ``ADDR``, ``ADDR:PORT``, ``[IPv6]:PORT``; returned as
    given (the library splits them)."""
    text = str(value)
    items = [v.strip() for v in text.split(",") if v.strip()]
    if not items:
        raise typer.BadParameter(f"{text!r} names no nameserver (ADDR, ADDR:PORT or [IPv6]:PORT)")
    for item in items:
        try:
            parse_endpoint(item)
        except NameProblem as exc:
            raise typer.BadParameter(f"{exc} (ADDR, ADDR:PORT or [IPv6]:PORT)") from None
    return text


def rdtype(value: object) -> str:
    """A DNS record type by name (A, AAAA, SRV, ...) or TYPEnnn (RFC 3597)."""
    text = str(value).strip().upper()
    import dns.rdatatype

    try:
        number = dns.rdatatype.from_text(text) if text.isascii() and text else None
    except (dns.rdatatype.UnknownRdatatype, ValueError):
        number = None
    if number is None or dns.rdatatype.is_metatype(number) and text not in ("ANY",):
        raise typer.BadParameter(f"{str(value)!r} is not a DNS record type (A, AAAA, CNAME, SRV, "
                                 f"TXT, PTR, ...)")
    return dns.rdatatype.to_text(number)


def interface(value: object) -> str:
    """A Linux interface name (IFNAMSIZ: at most 15 bytes, no '/', no whitespace, not '.'
    or '..'; dev_valid_name() in net/core/dev.c), or ``any``."""
    text = str(value)
    ok = (0 < len(text.encode("utf-8", "surrogateescape")) <= 15 and text not in (".", "..")
          and "/" not in text and ":" not in text and text.isprintable() and not any(c.isspace() for c in text))
    if not ok:
        raise typer.BadParameter(f"{text!r} is not an interface name (at most 15 characters, "
                                 f"no '/', ':' or spaces), or 'any'")
    return text


def ip_addresses(value: object) -> str:
    """One or more (comma-separated) IP addresses, e.g. ``--dns-endpoints``; returned as given."""
    text = str(value)
    items = [v.strip() for v in text.split(",") if v.strip()]
    if not items:
        raise typer.BadParameter(f"{text!r} names no IP address")
    for item in items:
        ip_address(item)
    return text
