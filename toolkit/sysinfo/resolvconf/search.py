"""The names glibc asks DNS for, in order: ``host_name_ok`` (res_hnok, the check before any
query), and the search walk of ``__res_context_search`` (res_query.c, 2.36) with ndots, the
search list, the root domain on the list and ``no-tld-query``.

Pure: the outcome of each name is a parameter (NXDOMAIN for every name by default).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from enum import StrEnum

from toolkit.sysinfo.resolvconf.glibc_numbers import inet_aton_exact
from toolkit.sysinfo.resolvconf.record import ResolvConf


class SearchOutcome(StrEnum):
    """What one query of the search walk got, as far as the walk cares."""

    NXDOMAIN = "nxdomain"
    NODATA = "nodata"
    SERVFAIL = "servfail"
    TIMEOUT = "timeout"
    REFUSED = "refused"
    ANSWER = "answer"
    NORECOVERY = "norecovery"   # the name cannot be encoded: res_nmkquery fails


# Outcomes after which glibc tries the next search domain (the others stop the loop).
_SEARCH_GOES_ON = frozenset({SearchOutcome.NXDOMAIN, SearchOutcome.NODATA, SearchOutcome.SERVFAIL})


def encodable(fqdn: str) -> bool:
    """Whether res_nmkquery can put this (absolute) name into a question."""
    if "\\" in fqdn:
        return True   # escapes: let the server judge (rare; not modelled)
    body = fqdn[:-1] if fqdn.endswith(".") else fqdn
    if not body:
        return True   # the root
    labels = body.split(".")
    try:
        raw = [lab.encode("utf-8", errors="surrogateescape") for lab in labels]
    except UnicodeEncodeError:
        return False
    if any(not lab or len(lab) > 63 for lab in raw):
        return False
    return sum(len(lab) + 1 for lab in raw) + 1 <= 255


def _is_address(name: str) -> bool:
    if inet_aton_exact(name) is not None:
        return True
    try:
        ipaddress.IPv6Address(name.split("%")[0])
    except ValueError:
        return False
    return True


_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


def _idna(name: str) -> str | None:
    """Non-ASCII names converted with IDNA, as getent and Python's socket module do."""
    if any(ord(c) > 0x7E for c in name):
        try:
            return name.encode("idna").decode("ascii")
        except (UnicodeError, ValueError):
            return None
    return name


def _presentation_labels(name: str) -> tuple[list[str], bool] | None:
    """The labels of a presentation name (``\\DDD`` and ``\\X`` decoded) and whether it
    ended in a dot; None when it is not a valid presentation name (empty label, bad escape)."""
    labels: list[str] = []
    cur: list[str] = []
    i, n = 0, len(name)
    while i < n:
        ch = name[i]
        if ch == "\\":
            if i + 3 < n and name[i + 1:i + 4].isascii() and name[i + 1:i + 4].isdigit():
                code = int(name[i + 1:i + 4])
                if code > 255:
                    return None
                cur.append(chr(code))
                i += 4
                continue
            if i + 1 >= n:
                return None
            cur.append(name[i + 1])
            i += 2
            continue
        if ch == ".":
            if not cur and not (i == n - 1 and not labels and n == 1):
                return None                       # empty label ("x..y", ".x")
            labels.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    trailing = not cur
    if cur:
        labels.append("".join(cur))
    return [lab for lab in labels if lab], trailing


def host_name_ok(name: str) -> str | None:
    """glibc's check before nss_dns sends anything (``res_hnok``, since 2.30): printable
    ASCII, a valid presentation name (``\\DDD`` and ``\\X`` escapes decoded), every label
    of letters, digits, ``-`` and ``_``, the first not starting with ``-``. Returns the
    decoded name, or None when glibc sends no query at all. Non-ASCII names are converted
    with IDNA first, as getent and Python's socket module do (C programs without AI_IDN
    get no query)."""
    ascii_name = _idna(name)
    if not ascii_name or any(not 0x20 < ord(c) < 0x7F for c in ascii_name):
        return None
    parsed = _presentation_labels(ascii_name)
    if parsed is None:
        return None
    labels, trailing = parsed
    if any(len(lab.encode("latin-1")) > 63 for lab in labels):
        return None
    if sum(len(lab) + 1 for lab in labels) + 1 > 255:
        return None
    if any(c not in _HOST_CHARS for lab in labels for c in lab):
        return None
    if labels and labels[0].startswith("-"):
        return None
    return ".".join(labels) + ("." if trailing else "")


def _always_nxdomain(_fqdn: str) -> SearchOutcome:
    return SearchOutcome.NXDOMAIN


def walk_search(name: str, conf: ResolvConf,
                outcome: Callable[[str], SearchOutcome] = _always_nxdomain) -> tuple[str, ...]:
    """The absolute names glibc's ``__res_context_search`` (res_query.c, 2.36) asks for,
    in order, given the outcome of each: NXDOMAIN, NODATA, SERVFAIL (search goes on),
    TIMEOUT/REFUSED (TRY_AGAIN: the search loop stops, the as-is name may still be
    tried), ANSWER (stop). Unencodable names are skipped the way glibc fails them
    (NO_RECOVERY: the search loop stops)."""
    if not name or _is_address(name) or conf.attempts <= 0:
        return ()
    decoded = host_name_ok(name)
    if decoded is None:
        return ()
    name = decoded
    out: list[str] = []

    def ask(fqdn: str) -> SearchOutcome:
        if not encodable(fqdn):
            return SearchOutcome.NORECOVERY
        out.append(fqdn)
        return outcome(fqdn)

    dots = name.count(".")
    trailing = name.endswith(".")
    as_is = name if trailing else name + "."
    tried_as_is = False
    if dots >= conf.ndots or trailing:
        if ask(as_is) == SearchOutcome.ANSWER or trailing:
            return tuple(out)
        tried_as_is = True
    searched = False
    root_on_list = False
    # RES_DEFNAMES and RES_DNSRCH are always on for resolv.conf-configured lookups.
    for domain in conf.search:
        searched = True
        if domain == ".":
            root_on_list = True
            fqdn = as_is
        else:
            fqdn = f"{name}.{domain}."
        result = ask(fqdn)
        if result == SearchOutcome.ANSWER:
            return tuple(out)
        if result in _SEARCH_GOES_ON:
            continue
        break
    if (dots or not searched or not conf.no_tld_query) and not (tried_as_is or root_on_list):
        ask(as_is)
    return tuple(out)


def search_candidates(name: str, conf: ResolvConf) -> tuple[str, ...]:
    """The names glibc tries for ``name`` when every answer is NXDOMAIN, in order, each
    absolute (trailing dot), case kept. An IP address literal yields ()."""
    return walk_search(name, conf)


def timeout_candidates(name: str, conf: ResolvConf) -> tuple[str, ...]:
    """The names glibc tries when no nameserver answers: a timeout ends the search walk,
    so at most the first search candidate and the name as written."""
    return walk_search(name, conf, lambda _fqdn: SearchOutcome.TIMEOUT)
