"""hosts: answers from a hosts file and inline entries (``hosts [FILE [ZONES...]] { IP
NAME...; fallthrough }``), as coredns/coredns plugin/hosts/hosts.go ServeDNS does:

- a name outside its zones passes on, except a PTR query: reverse names need not be in its
  zones, a PTR is answered whenever an entry has that address (auto-reverse, unless
  ``no_reverse``) and passes on otherwise, whatever ``fallthrough`` says;
- A and AAAA answer from the entries of that family; another type has no answer;
- no answer and no address of either family for the name: the query passes on when
  ``fallthrough`` covers the name, else SERVFAIL ("because of /etc/hosts' setup we don't
  have a SOA, so we make it SERVFAIL"): a ``hosts`` without fallthrough in the ``.`` block
  fails every name it does not list;
- no answer but an address of the other family: NOERROR without records (NODATA).

Entries outside its zones are dropped (hostsfile.go parse); inline lines count only before
``fallthrough`` (after it, setup.go refuses them: that is lint's business). CoreDNS 1.14
also reads ``*.NAME`` entries as wildcards for one label (hostsfile.go wildName4/6). The file
(default /etc/hosts) is read through the trace's FileReader; when it cannot be read, the
trace says what each outcome would be.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from toolkit.corefile.document import Directive
from toolkit.corefile.names import fqdn, in_zone, reverse_ip
from toolkit.corefile.plugins.base import (
    Action,
    Context,
    Handler,
    Query,
    Step,
    at,
    each,
    falls_through_unless_known,
    passes,
)
from toolkit.corefile.plugins.fall import falls_through
from toolkit.corefile.plugins.zones import zones_of

# Options of the hosts block; every other line is an inline entry "IP NAME...".
_OPTIONS = frozenset({"fallthrough", "ttl", "reload", "no_reverse", "fallthrough_unsupported"})


@dataclass
class HostsMap:
    """Names (FQDN) -> addresses per family, and addresses -> names for PTR."""

    v4: dict[str, list[str]] = field(default_factory=dict)
    v6: dict[str, list[str]] = field(default_factory=dict)
    rev: dict[str, list[str]] = field(default_factory=dict)

    def lookup(self, name: str, v6: bool, wildcards: bool) -> list[str]:
        """The addresses of NAME in one family (a ``*.`` entry for one label when WILDCARDS)."""
        m = self.v6 if v6 else self.v4
        if name in m:
            return m[name]
        if wildcards and name.count(".") > 1:
            return m.get("*." + name.split(".", 1)[1], [])
        return []


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


def parse_hosts(lines: list[list[str]], zones: list[str], reverse: bool, into: HostsMap) -> None:
    """Add hosts-file LINES (fields) to INTO: names outside ZONES dropped, PTR entries when
    REVERSE (hostsfile.go parse)."""
    for f in lines:
        if len(f) < 2:
            continue
        ip = _ip(f[0])
        if ip is None:
            continue
        addr = str(ip.ipv4_mapped) if ip.version == 6 and ip.ipv4_mapped else str(ip)
        fam = into.v4 if ip.version == 4 or ip.ipv4_mapped else into.v6
        for n in f[1:]:
            name = fqdn(n)
            if not any(in_zone(name, z) for z in zones):
                continue
            fam.setdefault(name, []).append(addr)
            if reverse and not name.startswith("*."):
                into.rev.setdefault(addr, []).append(name)


def _file_lines(text: str) -> list[list[str]]:
    return [line.split("#", 1)[0].split() for line in text.splitlines()]


def hosts_map(d: Directive, ctx: Context) -> tuple[HostsMap, str, bool]:
    """(the entries CoreDNS holds for D, the file, whether the file could be read)."""
    zones = zones_of(d, ctx.block, 1)
    reverse = not d.has("no_reverse")
    inline: list[list[str]] = []
    for sub in d.block:
        if sub.name == "fallthrough":
            break
        if sub.name not in _OPTIONS:
            inline.append([sub.name, *sub.args])
    m = HostsMap()
    path = d.args[0] if d.args else "/etc/hosts"
    text = ctx.files(path)
    if text is not None:
        parse_hosts(_file_lines(text), zones, reverse, m)
    parse_hosts(inline, zones, reverse, m)
    return m, path, text is not None


def _ptr(d: Directive, query: Query, m: HostsMap, path: str, read: bool) -> Step:
    ip = reverse_ip(query.name)
    names = m.rev.get(str(ip), []) if ip is not None else []
    if names:
        return Step(action=Action.ANSWER, name=query.name, directive=d, rcode="NOERROR",
                    outcome=f"answered by hosts ({at(d)}): {', '.join(names)}")
    if not read and ip is not None:
        return falls_through_unless_known(
            query, d, f"hosts ({at(d)}) answers the PTR if {path} has {ip}, else passes it on")
    return passes(query, f"hosts ({at(d)}) has no entry for this address: the PTR goes on "
                         "(hosts.go passes unknown PTRs on whatever fallthrough says)")


def step(d: Directive, query: Query, ctx: Context) -> Step:
    """What hosts.go ServeDNS does with QUERY (see the module docstring)."""
    zones = zones_of(d, ctx.block, 1)
    inside = any(in_zone(query.name, z) for z in zones)
    if not inside and query.qtype != "PTR":
        return passes(query)
    m, path, read = hosts_map(d, ctx)
    if query.qtype == "PTR":
        return _ptr(d, query, m, path, read)
    wild = ctx.semantics.at_least("1.14.0")
    found = {fam: m.lookup(query.name, fam, wild) for fam in (False, True)}
    answers = found[True] if query.qtype == "AAAA" else found[False] if query.qtype == "A" else []
    if answers:
        return Step(action=Action.ANSWER, name=query.name, directive=d, rcode="NOERROR",
                    outcome=f"answered by hosts ({at(d)}): {', '.join(answers)}")
    if found[False] or found[True]:
        return Step(action=Action.ANSWER, name=query.name, directive=d, rcode="NOERROR",
                    outcome=f"hosts ({at(d)}) has the name but no {query.qtype} record: "
                            "NOERROR without records")
    if falls_through(d, query.name):
        if read:
            return passes(query, f"hosts ({at(d)}) does not list the name: falls through")
        return falls_through_unless_known(
            query, d, f"hosts ({at(d)}) answers if {path} lists the name, else falls through")
    what = (f"hosts ({at(d)}) owns the zone without fallthrough and does not list the name: "
            "SERVFAIL (hosts.go has no SOA to say NXDOMAIN)")
    if not read:
        what = (f"hosts ({at(d)}) owns the zone without fallthrough: answers from {path}, "
                "else SERVFAIL (hosts.go has no SOA to say NXDOMAIN)")
    return Step(action=Action.ERROR if read else Action.ANSWER, name=query.name, directive=d,
                rcode="SERVFAIL" if read else None, outcome=what, may_fail=not read)


handler: Handler = each(step)
