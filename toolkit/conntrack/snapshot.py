"""One read of this network namespace's conntrack state, from every source that answers.

``read_snapshot`` never raises because a source is missing: ctnetlink needs NET_ADMIN,
/proc/net/stat/nf_conntrack needs CONFIG_NF_CONNTRACK_PROCFS, the sysctls need the
nf_conntrack module. Each attempt is recorded in ``sources`` (what worked, what did not and
why), and the caller decides whether what is left is enough (the CLI exits 3 when nothing
at all was readable).
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import StrEnum
from typing import Any, Protocol

from toolkit.conntrack.entries import FlowEntry, from_netlink_dict, parse_proc_line
from toolkit.conntrack.kernel import KernelInfo, read_kernel
from toolkit.conntrack.stats import Counters, ParseError, from_netlink, parse_proc_stat
from toolkit.deadline import Deadline
from toolkit.errors import best_effort
from toolkit.sysinfo.netns import NetnsInfo, current_netns

MAX_SCAN = 500_000  # entries looked at in one dump (nf_conntrack_max defaults to 262144)
MAX_KEEP = 5_000  # DNS entries kept

SYSCTLS = ("nf_conntrack_count", "nf_conntrack_max", "nf_conntrack_buckets", "nf_conntrack_acct",
           "nf_conntrack_udp_timeout", "nf_conntrack_udp_timeout_stream",
           "nf_conntrack_tcp_timeout_established", "nf_conntrack_tcp_timeout_syn_sent",
           "nf_conntrack_tcp_timeout_time_wait")


class Source(StrEnum):
    """What a snapshot reads (SourceStatus.name), in reading order."""

    SYSCTLS = "/proc/sys/net/netfilter"  # count, max, timeouts: no capability needed
    PROC_STAT = "/proc/net/stat/nf_conntrack"  # per-CPU counters (CONFIG_NF_CONNTRACK_PROCFS)
    CTNETLINK = "ctnetlink"  # the netlink socket itself (NET_ADMIN)
    NL_STATS = "ctnetlink stats (IPCTNL_MSG_CT_GET_STATS_CPU)"
    NL_COUNT = "ctnetlink count (IPCTNL_MSG_CT_GET_STATS)"
    NL_DUMP = "ctnetlink dump"
    PROC_ENTRIES = "/proc/net/nf_conntrack"  # the entries (CONFIG_NF_CONNTRACK_PROCFS)


@dataclass(frozen=True)
class SourceStatus:
    """One source a snapshot tried: whether it answered, what it gave or why not."""

    name: Source
    ok: bool
    detail: str = ""  # what it gave, or why not
    missing_capability: str | None = None  # e.g. "NET_ADMIN"


@dataclass(frozen=True, kw_only=True)
class ConntrackSnapshot:
    """One read of a netns's conntrack state: counters, table use, sysctls, DNS flows, and
    which sources answered."""

    taken_at: datetime
    netns: NetnsInfo
    kernel: KernelInfo
    net_admin: bool
    counters: Counters | None  # the per-CPU counters used (ctnetlink preferred)
    count: int | None  # entries in this netns's table
    count_source: str | None
    max: int | None  # nf_conntrack_max (global; the kernel compares this netns's count to it)
    sysctls: Mapping[str, int]
    entries: tuple[FlowEntry, ...] | None  # DNS flows; None: not asked for or not readable
    entries_source: str | None
    entries_scanned: int
    entries_truncated: bool
    port: int
    sources: tuple[SourceStatus, ...]
    _monotonic: float = field(default_factory=time.monotonic, compare=False)

    __json_properties__ = ("usage_pct", "counters_source", "readable")

    @property
    def usage_pct(self) -> float | None:
        """Entries of this netns against the global nf_conntrack_max, in percent."""
        if self.count is None or not self.max:
            return None
        return 100.0 * self.count / self.max

    @property
    def counters_source(self) -> str | None:
        """Where the counters were read (None: nowhere)."""
        return self.counters.source if self.counters else None

    @property
    def readable(self) -> bool:
        """Some source gave counters, the count or the entries."""
        return self.counters is not None or self.count is not None or self.entries is not None

    @property
    def failed(self) -> tuple[SourceStatus, ...]:
        """The sources that did not answer."""
        return tuple(s for s in self.sources if not s.ok)

    @property
    def missing_capabilities(self) -> tuple[str, ...]:
        """Capabilities whose absence cost a source."""
        return tuple(dict.fromkeys(s.missing_capability for s in self.sources if s.missing_capability))


class NetlinkReader(Protocol):
    """What read_snapshot needs from ctnetlink (toolkit.conntrack.ctnetlink by default;
    pyroute2 below; recorded in tests)."""

    def stats(self) -> list[Mapping[str, int]]:
        """One dict of counters per CPU."""

    def count_max(self) -> tuple[int | None, int | None]:
        """This netns's entry count and nf_conntrack_max."""

    # Any: ctnetlink's flat dict of one entry (ints, strings, nested tuples).
    def dump(self) -> Iterable[Mapping[str, Any]]:
        """Every entry of the table."""

    def close(self) -> None:
        """Release the socket."""


def _errno_of(exc: BaseException) -> int | None:
    code = getattr(exc, "code", None)
    if isinstance(code, int):
        return abs(code)
    return getattr(exc, "errno", None)


def _why(exc: BaseException) -> tuple[str, str | None]:
    code = _errno_of(exc)
    if code == errno.EPERM or code == errno.EACCES:
        return "permission denied by the kernel (ctnetlink needs NET_ADMIN)", "NET_ADMIN"
    if code in (errno.EPROTONOSUPPORT, errno.ENOENT, errno.EOPNOTSUPP):
        return f"ctnetlink unavailable (nf_conntrack_netlink not loaded?): {exc}", None
    return f"{type(exc).__name__}: {exc}", None


def _read(path: str) -> str:
    with open(path, encoding="ascii", errors="replace") as fh:
        return fh.read()


def read_snapshot(*, entries: bool = True, port: int = 53, proc_root: str = "/proc",
                  caps: frozenset[str] | None = None,
                  netlink: Callable[[], NetlinkReader] | None = None,
                  netns: NetnsInfo | None = None, kernel: KernelInfo | None = None,
                  deadline: Deadline | None = None) -> ConntrackSnapshot:
    """Read counters, count/max, timeouts and (with ``entries``) the DNS flows on ``port``.

    ``proc_root``, ``caps``, ``netlink``, ``netns`` and ``kernel`` exist for tests (recorded
    samples); the defaults read the live system.
    """
    if caps is None:
        from toolkit.sysinfo.caps import effective_caps

        caps = effective_caps()
    net_admin = "NET_ADMIN" in caps
    taken_at = datetime.now(timezone.utc)
    mono = time.monotonic()
    sources: list[SourceStatus] = []
    netns = netns if netns is not None else current_netns()
    kernel = kernel if kernel is not None else read_kernel(os.path.join(proc_root, "sys/kernel/osrelease"))
    sysctls = _read_sysctls(proc_root, sources)
    proc_counters = _read_proc_stat(proc_root, sources)
    reader = _open_ctnetlink(netlink, net_admin, sources)
    nl = _read_ctnetlink(reader, sources) if reader is not None else _NetlinkStats()
    count, count_source = _count(sysctls, nl.count, proc_counters)
    flows = _read_flows(reader, proc_root, port, deadline, sources) if entries else _Flows()
    if reader is not None:
        with best_effort(None, "closing ctnetlink"):  # what was read stays good
            reader.close()
    return ConntrackSnapshot(taken_at=taken_at, netns=netns, kernel=kernel, net_admin=net_admin,
                             counters=nl.counters or proc_counters, count=count, count_source=count_source,
                             max=sysctls.get("nf_conntrack_max", nl.max), sysctls=sysctls, entries=flows.entries,
                             entries_source=flows.source, entries_scanned=flows.scanned,
                             entries_truncated=flows.truncated, port=port, sources=tuple(sources), _monotonic=mono)


def _read_sysctls(proc_root: str, sources: list[SourceStatus]) -> dict[str, int]:
    """count, max, timeouts (0444/0644: no capability needed)."""
    sysctls: dict[str, int] = {}
    sdir = os.path.join(proc_root, "sys/net/netfilter")
    for name in SYSCTLS:
        try:
            sysctls[name] = int(_read(os.path.join(sdir, name)).split()[0])
        except (OSError, ValueError, IndexError):
            continue
    if sysctls:
        sources.append(SourceStatus(name=Source.SYSCTLS, ok=True, detail=f"{len(sysctls)} sysctls"))
    else:
        sources.append(SourceStatus(name=Source.SYSCTLS, ok=False,
                                    detail="no nf_conntrack sysctls (nf_conntrack module not loaded?)"))
    return sysctls


def _read_proc_stat(proc_root: str, sources: list[SourceStatus]) -> Counters | None:
    """The per-CPU counters of procfs."""
    try:
        counters = parse_proc_stat(_read(os.path.join(proc_root, "net/stat/nf_conntrack")))
    except FileNotFoundError:
        sources.append(SourceStatus(name=Source.PROC_STAT, ok=False,
                                    detail="missing (kernel without CONFIG_NF_CONNTRACK_PROCFS, or "
                                    "nf_conntrack not loaded)"))
        return None
    except (OSError, ParseError) as exc:
        sources.append(SourceStatus(name=Source.PROC_STAT, ok=False, detail=str(exc)))
        return None
    sources.append(SourceStatus(name=Source.PROC_STAT, ok=True, detail=f"{len(counters.per_cpu)} CPUs"))
    return counters


def _failed(source: Source, exc: BaseException) -> SourceStatus:
    why, cap = _why(exc)
    return SourceStatus(name=source, ok=False, detail=why, missing_capability=cap)


def _open_ctnetlink(netlink: Callable[[], NetlinkReader] | None, net_admin: bool,
                    sources: list[SourceStatus]) -> NetlinkReader | None:
    """The ctnetlink reader, or None (no NET_ADMIN, or the kernel refused: recorded)."""
    if not net_admin:
        sources.append(SourceStatus(name=Source.CTNETLINK, ok=False,
                                    detail="not tried: this process lacks NET_ADMIN (CapEff)",
                                    missing_capability="NET_ADMIN"))
        return None
    reader: NetlinkReader | None = None
    with best_effort(None, "opening ctnetlink") as attempt:  # a missing source is data
        if netlink is None:
            from toolkit.conntrack.ctnetlink import SocketReader

            netlink = SocketReader
        reader = netlink()
    if attempt.error is not None:
        sources.append(_failed(Source.CTNETLINK, attempt.error))
    return reader


@dataclass(frozen=True, kw_only=True)
class _NetlinkStats:
    counters: Counters | None = None
    count: int | None = None
    max: int | None = None


def _read_ctnetlink(reader: NetlinkReader, sources: list[SourceStatus]) -> _NetlinkStats:
    """Per-CPU counters and count/max through ctnetlink; each failure recorded."""
    counters = None
    # ParseError: the kernel answered with no per-CPU statistics at all
    with best_effort(None, Source.NL_STATS, also=(ParseError,)) as attempt:
        counters = from_netlink(reader.stats())
        sources.append(SourceStatus(name=Source.NL_STATS, ok=True, detail=f"{len(counters.per_cpu)} CPUs"))
    if attempt.error is not None:
        sources.append(_failed(Source.NL_STATS, attempt.error))
    count = cmax = None
    with best_effort(None, Source.NL_COUNT) as attempt:
        count, cmax = reader.count_max()
        sources.append(SourceStatus(name=Source.NL_COUNT, ok=True))
    if attempt.error is not None:
        sources.append(_failed(Source.NL_COUNT, attempt.error))
    return _NetlinkStats(counters=counters, count=count, max=cmax)


def _count(sysctls: Mapping[str, int], nl_count: int | None,
           proc_counters: Counters | None) -> tuple[int | None, str | None]:
    """This netns's entry count and where it was read, best source first."""
    if sysctls.get("nf_conntrack_count") is not None:
        return sysctls["nf_conntrack_count"], "/proc/sys/net/netfilter/nf_conntrack_count"
    if nl_count is not None:
        return nl_count, "ctnetlink"
    if proc_counters is not None and proc_counters.entries is not None:
        return proc_counters.entries, "/proc/net/stat/nf_conntrack"
    return None, None


@dataclass(frozen=True, kw_only=True)
class _Flows:
    entries: tuple[FlowEntry, ...] | None = None  # None: not asked for, or not readable
    source: str | None = None
    scanned: int = 0
    truncated: bool = False


def _read_flows(reader: NetlinkReader | None, proc_root: str, port: int, deadline: Deadline | None,
                sources: list[SourceStatus]) -> _Flows:
    """The DNS flows on ``port``: from the ctnetlink dump, else /proc/net/nf_conntrack."""
    if reader is not None:
        # ValueError: an entry field that is not the number the kernel should have sent
        with best_effort(None, Source.NL_DUMP, also=(ValueError,)) as attempt:
            kept, scanned, truncated = _collect(reader.dump(), from_netlink_dict, port, deadline)
        if attempt.error is None:
            sources.append(SourceStatus(name=Source.NL_DUMP, ok=True, detail=f"{scanned} entries scanned"))
            return _Flows(entries=kept, source="ctnetlink", scanned=scanned, truncated=truncated)
        sources.append(_failed(Source.NL_DUMP, attempt.error))
    try:
        with open(os.path.join(proc_root, "net/nf_conntrack"), encoding="ascii", errors="replace") as fh:
            kept, scanned, truncated = _collect(fh, parse_proc_line, port, deadline)
    except FileNotFoundError:
        sources.append(SourceStatus(name=Source.PROC_ENTRIES, ok=False,
                                    detail="missing (CONFIG_NF_CONNTRACK_PROCFS off, or nf_conntrack not loaded)"))
        return _Flows()
    except OSError as exc:
        sources.append(SourceStatus(name=Source.PROC_ENTRIES, ok=False, detail=str(exc)))
        return _Flows()
    sources.append(SourceStatus(name=Source.PROC_ENTRIES, ok=True, detail=f"{scanned} entries scanned"))
    return _Flows(entries=kept, source="/proc/net/nf_conntrack", scanned=scanned, truncated=truncated)


def _collect(items: Iterable[Any], parse: Callable[[Any], FlowEntry | None], port: int,
             deadline: Deadline | None) -> tuple[tuple[FlowEntry, ...], int, bool]:
    kept: list[FlowEntry] = []
    scanned = 0
    truncated = False
    it = iter(items)
    try:
        for item in it:
            scanned += 1
            if scanned > MAX_SCAN or (deadline is not None and scanned % 512 == 0 and deadline.expired):
                truncated = True
                break
            if not item:
                continue
            e = parse(item)
            if e is None or not e.is_dns(port):
                continue
            if len(kept) >= MAX_KEEP:
                truncated = True
                continue
            kept.append(e)
    finally:
        close = getattr(it, "close", None)
        if close is not None:
            close()
    return tuple(kept), scanned, truncated
