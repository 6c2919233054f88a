"""/etc/hosts and the ``hosts:`` line of /etc/nsswitch.conf, read as glibc reads them.

Pure parsers of text plus thin loaders; they never raise on odd content (findings say
what was odd), only ``InputFileError`` when a file exists but cannot be read.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from toolkit.model import Finding, Severity
from toolkit.sysinfo.resolvconf.files import decode_text, read_input
from toolkit.sysinfo.resolvconf.findings import MAX_FINDINGS_PER_CODE, finding, show
from toolkit.sysinfo.resolvconf.glibc_numbers import inet_aton_exact


class NssStatus(StrEnum):
    """What a source of the hosts: line can report (nsswitch.conf(5) ``[STATUS=action]``)."""

    SUCCESS = "SUCCESS"
    NOTFOUND = "NOTFOUND"
    UNAVAIL = "UNAVAIL"
    TRYAGAIN = "TRYAGAIN"


class NssAction(StrEnum):
    """What glibc does after a source reported a status."""

    RETURN = "return"
    CONTINUE = "continue"
    MERGE = "merge"


_STATUSES = frozenset(s.lower() for s in NssStatus)   # the file may write them in any case
_ACTIONS = frozenset(NssAction)
# glibc's built-in hosts line when nsswitch.conf has none (nss/nss_database.c).
GLIBC_DEFAULT_HOSTS = "dns [!UNAVAIL=return] files"


@dataclass(frozen=True)
class HostsEntry:
    """One line of /etc/hosts that nss_files uses: the address and its names, in order."""

    address: str
    names: tuple[str, ...]
    line: int


@dataclass(frozen=True)
class HostsFile:
    """/etc/hosts as glibc's nss_files reads it, with findings about lines it skips."""

    path: str
    entries: tuple[HostsEntry, ...] = ()
    findings: tuple[Finding, ...] = ()
    exists: bool = True

    def lookup(self, name: str) -> tuple[HostsEntry, ...]:
        """Entries that hold ``name`` (case-insensitive; a trailing dot on either side is
        ignored). Pass each search candidate to see every override."""
        key = name.rstrip(".").lower()
        if not key:
            return ()
        return tuple(e for e in self.entries if any(n.rstrip(".").lower() == key for n in e.names))


def _address_ok(text: str) -> str | None:
    v4 = inet_aton_exact(text)
    if v4 is not None:
        return v4 if text.count(".") == 3 else None   # nss_files wants a full dotted quad
    try:
        return str(ipaddress.IPv6Address(text.split("%")[0]))
    except ValueError:
        return None


def parse_hosts(text: str, path: str = "/etc/hosts") -> HostsFile:
    """Parse hosts(5): address then names, ``#`` starts a comment anywhere."""
    entries: list[HostsEntry] = []
    bad: list[tuple[int, str, str]] = []
    bad_count = 0
    for lineno, raw in enumerate(text.split("\n"), start=1):
        line = raw.split("\0", 1)[0].split("#", 1)[0]
        fields = line.split()
        if not fields:
            continue
        addr = _address_ok(fields[0])
        if addr is not None and len(fields) >= 2:
            entries.append(HostsEntry(addr, tuple(fields[1:]), lineno))
            continue
        bad_count += 1
        if len(bad) < MAX_FINDINGS_PER_CODE:
            bad.append((lineno, raw, f"{show(fields[0], 40)!r} is not an IP address" if addr is None
                        else "an address without any name"))
    findings = []
    if bad:
        evidence = [f"line {n}: {show(t)} ({w})" for n, t, w in bad]
        if bad_count > len(bad):
            evidence.append(f"... and {bad_count - len(bad)} more")
        findings.append(finding(
            "hosts-malformed-line", Severity.WARNING, f"{path}: {bad_count} line(s) glibc skips",
            "write one `ADDRESS NAME [ALIAS...]` per line", evidence=evidence,
            lines=[n for n, _, _ in bad], count=bad_count))
    return HostsFile(path=path, entries=tuple(entries), findings=tuple(findings))


def load_hosts(path: str = "/etc/hosts") -> HostsFile:
    """Read and parse ``path``; a missing file is an empty one (with an info finding)."""
    data = read_input(path)
    if data is None:
        return HostsFile(path=path, exists=False, findings=(finding(
            "hosts-missing", Severity.INFO, f"{path} does not exist: no static host entries",
            "nothing to do unless the application relies on /etc/hosts"),))
    text, extra = decode_text(data, path, "hosts file")
    hosts = parse_hosts(text, path)
    return HostsFile(path=path, entries=hosts.entries, findings=(*extra, *hosts.findings))


@dataclass(frozen=True)
class NssSource:
    """One service of the hosts line and the ``[STATUS=action]`` criteria after it."""

    name: str
    criteria: tuple[str, ...] = ()      # normalised, e.g. ("!UNAVAIL=return",)

    def action(self, status: str) -> NssAction:
        """The action for ``status`` (any case) after this source (glibc defaults: return on
        SUCCESS, continue otherwise)."""
        key = status.upper()
        result = NssAction.RETURN if key == NssStatus.SUCCESS else NssAction.CONTINUE
        for crit in self.criteria:
            neg = crit.startswith("!")
            st, _, act = crit.lstrip("!").partition("=")
            if (st == key) != neg:
                result = NssAction(act)    # criteria are validated and normalised when parsed
        return result

    def __str__(self) -> str:
        return self.name + (" [" + " ".join(self.criteria) + "]" if self.criteria else "")


@dataclass(frozen=True)
class NssHosts:
    """The hosts: line of nsswitch.conf (or glibc's default), with findings about it."""

    path: str
    sources: tuple[NssSource, ...]
    defaulted: bool = False
    line: int | None = None
    findings: tuple[Finding, ...] = ()

    __json_properties__ = ("uses_dns", "files_before_dns", "uses_resolved", "mdns_minimal_return")

    def _index(self, *names: str) -> int | None:
        return next((i for i, s in enumerate(self.sources) if s.name in names), None)

    @property
    def uses_dns(self) -> bool:
        """nss_dns is on the line: glibc's stub resolver reads resolv.conf."""
        return self._index("dns") is not None

    @property
    def files_before_dns(self) -> bool:
        """``files`` is on the line before ``dns``/``resolve`` (or without them): /etc/hosts first."""
        f, d = self._index("files"), self._index("dns", "resolve")
        return f is not None and (d is None or f < d)

    @property
    def uses_resolved(self) -> bool:
        """nss-resolve (systemd-resolved) is on the line: that module asks resolved over
        D-Bus/varlink and does not read resolv.conf."""
        return self._index("resolve") is not None

    @property
    def mdns_minimal_return(self) -> bool:
        """mdns*_minimal with [NOTFOUND=return]: names under .local never reach DNS."""
        return any(s.name.startswith("mdns") and s.name.endswith("_minimal")
                   and s.action(NssStatus.NOTFOUND) is NssAction.RETURN for s in self.sources)

    def described(self) -> str:
        """The line as glibc understands it, e.g. ``files dns [!UNAVAIL=return]``."""
        return " ".join(str(s) for s in self.sources)


def parse_hosts_line(spec: str) -> tuple[tuple[NssSource, ...], list[str]]:
    """``files dns [!UNAVAIL=return] ...`` -> sources, problems."""
    sources: list[NssSource] = []
    problems: list[str] = []
    i, n = 0, len(spec)
    while i < n:
        ch = spec[i]
        if ch.isspace():
            i += 1
            continue
        if ch == "[":
            end = spec.find("]", i)
            if end < 0:
                problems.append(f"unterminated criteria {show(spec[i:], 40)!r}")
                break
            body = spec[i + 1:end]
            i = end + 1
            if not sources:
                problems.append(f"criteria [{body}] before any source")
                continue
            crits = list(sources[-1].criteria)
            for item in body.split():
                neg = item.startswith("!")
                st, sep, act = item.lstrip("!").partition("=")
                if not sep or st.lower() not in _STATUSES or act.lower() not in _ACTIONS:
                    problems.append(f"bad criterion {item!r}")
                    continue
                crits.append(("!" if neg else "") + f"{st.upper()}={act.lower()}")
            sources[-1] = NssSource(sources[-1].name, tuple(crits))
            continue
        j = i
        while j < n and not spec[j].isspace() and spec[j] != "[":
            j += 1
        sources.append(NssSource(spec[i:j]))
        i = j
    return tuple(sources), problems


def parse_nsswitch(text: str, path: str = "/etc/nsswitch.conf") -> NssHosts:
    """The ``hosts:`` line (the last one wins); glibc's default when there is none."""
    found: list[tuple[int, str]] = []
    for lineno, raw in enumerate(text.split("\n"), start=1):
        line = raw.split("\0", 1)[0].split("#", 1)[0].strip()
        key, sep, rest = line.partition(":")
        if sep and key.strip() == "hosts":
            found.append((lineno, rest))
    findings: list[Finding] = []
    if not found:
        sources, _ = parse_hosts_line(GLIBC_DEFAULT_HOSTS)
        findings.append(finding(
            "nsswitch-no-hosts-line", Severity.INFO,
            f"{path} has no hosts: line: glibc uses its default `{GLIBC_DEFAULT_HOSTS}` "
            "(DNS before /etc/hosts)",
            "add `hosts: files dns` to consult /etc/hosts first"))
        return NssHosts(path, sources, defaulted=True, findings=tuple(findings))
    lineno, spec = found[-1]
    if len(found) > 1:
        findings.append(finding(
            "nsswitch-duplicate-hosts-line", Severity.WARNING,
            f"{path} has {len(found)} hosts: lines; the last one (line {lineno}) is used",
            "keep one hosts: line", lines=[n for n, _ in found]))
    sources, problems = parse_hosts_line(spec)
    if problems:
        findings.append(finding(
            "nsswitch-malformed", Severity.WARNING, f"{path} line {lineno}: hosts: line has errors",
            "write services and [STATUS=action] criteria as in nsswitch.conf(5)",
            evidence=problems[:10], line=lineno))
    nss = NssHosts(path, sources, line=lineno, findings=tuple(findings))
    return NssHosts(path, sources, line=lineno, findings=tuple(findings) + tuple(_lint_nss(nss)))


def _lint_nss(nss: NssHosts) -> Iterable[Finding]:
    if not nss.sources:
        yield finding("nsswitch-hosts-empty", Severity.WARNING,
                      "the hosts: line lists no source: host name lookups fail",
                      "write `hosts: files dns`")
        return
    if not nss.uses_dns and not nss.uses_resolved:
        yield finding("nsswitch-no-dns", Severity.WARNING,
                      f"hosts: {nss.described()} has no dns source: getaddrinfo() never asks DNS, "
                      "resolv.conf is irrelevant", "add dns to the hosts: line")
    if nss.uses_resolved:
        yield finding("nsswitch-resolve", Severity.INFO,
                      "hosts: uses systemd-resolved (resolve): that module ignores resolv.conf and "
                      "asks resolved; dns after it only runs when resolved is unavailable",
                      "compare with `resolvectl query NAME`; in a container resolved is rarely running")


def load_nsswitch(path: str = "/etc/nsswitch.conf") -> NssHosts:
    """Read ``path`` and parse its hosts: line; a missing file means glibc's default line."""
    data = read_input(path)
    if data is None:
        sources, _ = parse_hosts_line(GLIBC_DEFAULT_HOSTS)
        return NssHosts(path, sources, defaulted=True, findings=(finding(
            "nsswitch-missing", Severity.INFO,
            f"{path} does not exist: glibc uses `hosts: {GLIBC_DEFAULT_HOSTS}` (DNS first, then "
            "/etc/hosts only when DNS is unavailable)",
            "add /etc/nsswitch.conf with `hosts: files dns` (musl/Alpine ignores nsswitch.conf)"),))
    text, extra = decode_text(data, path, "nsswitch.conf")
    nss = parse_nsswitch(text, path)
    return dataclasses.replace(nss, findings=(*extra, *nss.findings))
