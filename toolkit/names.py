"""What a DNS name and a nameserver address given by a user must look like.

Pure checks shared by the CLI (which turns them into usage errors, exit 2) and the library
(which raises UsageError): a name that cannot be a host name must not be sent to a
nameserver and then blamed on it, and an address must be parsed once, the same way
everywhere.
"""

from __future__ import annotations

import ipaddress
import socket
import unicodedata

# RFC 1035 2.3.4: labels of 63 octets, names of 255 octets on the wire, i.e. 253 characters
# in text form without the trailing dot.
MAX_LABEL = 63
MAX_NAME = 253
# LDH (RFC 952/1123) plus '_' (SRV/DKIM labels, RFC 2782/8552) and '*' (wildcards).
_ASCII_OK = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.*")


class NameProblem(ValueError):
    """Why a text cannot be a DNS name or an address (the message is for the user)."""


def quoted(text: str, limit: int = 80) -> str:
    """TEXT quoted for a message, clipped: a 5,000-character argument is named, not echoed."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text)} characters)"


def _show(ch: str) -> str:
    if ch == " ":
        return "a space"
    if "\udc80" <= ch <= "\udcff":
        return "bytes that are not UTF-8"
    if unicodedata.category(ch)[0] in "CZ":
        return f"the control or space character U+{ord(ch):04X}"
    return repr(ch)


def check_name(text: str, *, what: str = "name") -> str:
    """TEXT if it can be a DNS host name (IDN allowed), else NameProblem saying why.

    A trailing dot (absolute name) is kept; the root "." is a name too."""
    if not text:
        raise NameProblem(f"the {what} is empty")
    if any("\udc80" <= ch <= "\udcff" for ch in text):
        # argv decoded with a non-UTF-8 locale (LC_ALL=C without UTF-8 mode) carries UTF-8
        # bytes as surrogate escapes (PEP 383): read them as the UTF-8 they are, if they are.
        try:
            text = text.encode("utf-8", "surrogateescape").decode("utf-8")
        except UnicodeError:
            pass
    if text == ".":
        return text
    for ch in text:
        if ch in _ASCII_OK:
            continue
        if ord(ch) < 128 or unicodedata.category(ch)[0] in "CZ" or "\ud800" <= ch <= "\udfff":
            raise NameProblem(f"{quoted(text)} is not a host name: it contains {_show(ch)}")
    body = text[:-1] if text.endswith(".") else text
    labels = body.split(".")
    if any(not label for label in labels):
        raise NameProblem(f"{quoted(text)} is not a host name: it has an empty label (two dots in a row, "
                          f"or a leading dot)")
    wire_len = 0
    for label in labels:
        if label.isascii():
            encoded = label
        else:
            try:
                encoded = label.encode("idna").decode("ascii")
            except UnicodeError:
                raise NameProblem(f"{quoted(text)} is not a host name: label {quoted(label)} is not a valid "
                                  f"internationalized label (IDNA)") from None
        if len(encoded) > MAX_LABEL:
            raise NameProblem(f"{quoted(text)} is not a host name: a label is {len(encoded)} characters "
                              f"long, DNS allows {MAX_LABEL} (RFC 1035)")
        wire_len += len(encoded) + 1
    if wire_len - 1 > MAX_NAME:
        raise NameProblem(f"the {what} is {wire_len - 1} characters long, DNS allows {MAX_NAME} "
                          f"(RFC 1035)")
    return text


def check_address(text: str) -> str:
    """An IP address, optionally with a ``%IF`` scope (IPv6 link-local only, an interface
    that exists here). Returns it as given."""
    if not text or not text.isascii() or not text.isprintable() or " " in text:
        raise NameProblem(f"{quoted(text)} is not an IP address")
    host, sep, scope = text.partition("%")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise NameProblem(f"{quoted(text)} is not an IP address") from None
    if sep:
        if not (ip.version == 6 and ip.is_link_local):
            raise NameProblem(f"{quoted(text)}: a %INTERFACE scope applies only to IPv6 link-local "
                              f"addresses (fe80::/10)")
        try:
            socket.if_nametoindex(scope)
        except (OSError, ValueError):
            raise NameProblem(f"{quoted(text)}: no network interface {quoted(scope)} here") from None
    return text


def parse_endpoint(text: str, default_port: int = 53) -> tuple[str, int]:
    """``ADDR``, ``ADDR:PORT`` (IPv4), ``[ADDR]`` or ``[ADDR]:PORT`` (IPv6, RFC 3986
    bracket form), or a bare IPv6 address. Returns (address, port)."""
    item = text.strip()
    host, port_s = item, None
    if item.startswith("["):
        end = item.find("]")
        if end == -1:
            raise NameProblem(f"{quoted(text)}: '[' without ']' (write [ADDRESS]:PORT)")
        host, rest = item[1:end], item[end + 1:]
        if rest:
            if not rest.startswith(":"):
                raise NameProblem(f"{quoted(text)}: expected ':PORT' after ']'")
            port_s = rest[1:]
    elif item.count(":") == 1:
        host, _, port_s = item.partition(":")
    if item.startswith("[") and ":" not in host:  # RFC 3986 3.2.2: brackets hold IPv6 literals
        raise NameProblem(f"{quoted(text)}: brackets are for IPv6 addresses (write ADDRESS:PORT)")
    port = default_port
    if port_s is not None:
        # At most 5 digits before int(): Python refuses int() of over 4,300 digits.
        if not (port_s.isascii() and port_s.isdigit() and len(port_s) <= 5) \
                or not 0 < int(port_s) < 65536:
            raise NameProblem(f"{quoted(text)}: the port must be a number from 1 to 65535")
        port = int(port_s)
    return check_address(host), port
