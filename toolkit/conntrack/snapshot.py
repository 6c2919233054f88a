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
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

from toolkit.errors import reraise_bug
from toolkit.conntrack.entries import FlowEntry, from_netlink_dict, netlink_to_dict, parse_proc_line
from toolkit.conntrack.kernel import KernelInfo, read_kernel
from toolkit.conntrack.stats import Counters, ParseError, from_netlink, parse_proc_stat
from toolkit.deadline import Deadline
from toolkit.sysinfo.netns import NetnsInfo, current_netns

MAX_SCAN = 500_000  # entries looked at in one dump (nf_conntrack_max defaults to 262144)
MAX_KEEP = 5_000  # DNS entries kept

SYSCTLS = ("nf_conntrack_count", "nf_conntrack_max", "nf_conntrack_buckets", "nf_conntrack_acct",
           "nf_conntrack_udp_timeout", "nf_conntrack_udp_timeout_stream",
           "nf_conntrack_tcp_timeout_established", "nf_conntrack_tcp_timeout_syn_sent",
           "nf_conntrack_tcp_timeout_time_wait")


@dataclass(frozen=True)
class SourceStatus:
    name: str  # what was read: "ctnetlink stats", "/proc/net/stat/nf_conntrack", ...
    ok: bool
    detail: str = ""  # what it gave, or why not
    missing_capability: str | None = None  # e.g. "NET_ADMIN"


@dataclass(frozen=True)
class ConntrackSnapshot:
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
        if self.count is None or not self.max:
            return None
        return 100.0 * self.count / self.max

    @property
    def counters_source(self) -> str | None:
        return self.counters.source if self.counters else None

    @property
    def readable(self) -> bool:
        return self.counters is not None or self.count is not None or self.entries is not None

    @property
    def failed(self) -> tuple[SourceStatus, ...]:
        return tuple(s for s in self.sources if not s.ok)

    @property
    def missing_capabilities(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(s.missing_capability for s in self.sources if s.missing_capability))


class NetlinkReader(Protocol):
    """What read_snapshot needs from ctnetlink (pyroute2 by default; recorded in tests)."""

    def stats(self) -> list[Mapping[str, int]]: ...
    def count_max(self) -> tuple[int | None, int | None]: ...
    def dump(self) -> Iterable[Mapping[str, Any]]: ...
    def close(self) -> None: ...


class Pyroute2Reader:
    """ctnetlink through pyroute2 (imported here, never at CLI start)."""

    def __init__(self) -> None:
        from pyroute2 import Conntrack

        self._ct = Conntrack()

    def stats(self):
        return self._ct.stat()

    def count_max(self):
        return self._ct.count(), self._ct.conntrack_max_size()

    def dump(self) -> Iterator[Mapping[str, Any]]:
        import socket

        from pyroute2.netlink.nfnetlink.nfctsocket import NFCTSocket

        for family in (socket.AF_INET, socket.AF_INET6):
            sock = NFCTSocket(nfgen_family=family)
            try:
                for msg in sock.dump():
                    d = netlink_to_dict(msg)
                    yield d if d is not None else {}
            finally:
                sock.close()

    def close(self) -> None:
        self._ct.close()


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

    # sysctls: count, max, timeouts (0444/0644; no capability needed)
    sysctls: dict[str, int] = {}
    sdir = os.path.join(proc_root, "sys/net/netfilter")
    for name in SYSCTLS:
        try:
            sysctls[name] = int(_read(os.path.join(sdir, name)).split()[0])
        except (OSError, ValueError, IndexError):
            continue
    if sysctls:
        sources.append(SourceStatus("/proc/sys/net/netfilter", True, f"{len(sysctls)} sysctls"))
    else:
        sources.append(SourceStatus("/proc/sys/net/netfilter", False,
                                    "no nf_conntrack sysctls (nf_conntrack module not loaded?)"))

    # procfs per-CPU stats
    proc_counters = None
    stat_path = os.path.join(proc_root, "net/stat/nf_conntrack")
    try:
        proc_counters = parse_proc_stat(_read(stat_path))
        sources.append(SourceStatus("/proc/net/stat/nf_conntrack", True,
                                    f"{len(proc_counters.per_cpu)} CPUs"))
    except FileNotFoundError:
        sources.append(SourceStatus("/proc/net/stat/nf_conntrack", False,
                                    "missing (kernel without CONFIG_NF_CONNTRACK_PROCFS, or "
                                    "nf_conntrack not loaded)"))
    except (OSError, ParseError) as exc:
        sources.append(SourceStatus("/proc/net/stat/nf_conntrack", False, str(exc)))

    # ctnetlink
    nl_counters = None
    nl_count = nl_max = None
    reader = None
    if not net_admin:
        sources.append(SourceStatus("ctnetlink", False,
                                    "not tried: this process lacks NET_ADMIN (CapEff)", "NET_ADMIN"))
    else:
        try:
            reader = (netlink or Pyroute2Reader)()
        except Exception as exc:  # noqa: BLE001 - a missing source is data
            reraise_bug(exc)
            why, cap = _why(exc)
            sources.append(SourceStatus("ctnetlink", False, why, cap))
        if reader is not None:
            try:
                nl_counters = from_netlink(reader.stats())
                sources.append(SourceStatus("ctnetlink stats (IPCTNL_MSG_CT_GET_STATS_CPU)", True,
                                            f"{len(nl_counters.per_cpu)} CPUs"))
            except Exception as exc:  # noqa: BLE001
                reraise_bug(exc)
                why, cap = _why(exc)
                sources.append(SourceStatus("ctnetlink stats (IPCTNL_MSG_CT_GET_STATS_CPU)", False, why, cap))
            try:
                nl_count, nl_max = reader.count_max()
                sources.append(SourceStatus("ctnetlink count (IPCTNL_MSG_CT_GET_STATS)", True))
            except Exception as exc:  # noqa: BLE001
                reraise_bug(exc)
                why, cap = _why(exc)
                sources.append(SourceStatus("ctnetlink count (IPCTNL_MSG_CT_GET_STATS)", False, why, cap))

    counters = nl_counters or proc_counters
    if sysctls.get("nf_conntrack_count") is not None:
        count, count_source = sysctls["nf_conntrack_count"], "/proc/sys/net/netfilter/nf_conntrack_count"
    elif nl_count is not None:
        count, count_source = nl_count, "ctnetlink"
    elif proc_counters is not None and proc_counters.entries is not None:
        count, count_source = proc_counters.entries, "/proc/net/stat/nf_conntrack"
    else:
        count, count_source = None, None
    cmax = sysctls.get("nf_conntrack_max", nl_max)

    flows: tuple[FlowEntry, ...] | None = None
    flows_source = None
    scanned = 0
    truncated = False
    if entries:
        if reader is not None:
            try:
                kept, scanned, truncated = _collect(reader.dump(), from_netlink_dict, port, deadline)
                flows, flows_source = kept, "ctnetlink"
                sources.append(SourceStatus("ctnetlink dump", True, f"{scanned} entries scanned"))
            except Exception as exc:  # noqa: BLE001
                reraise_bug(exc)
                why, cap = _why(exc)
                sources.append(SourceStatus("ctnetlink dump", False, why, cap))
        if flows is None:
            path = os.path.join(proc_root, "net/nf_conntrack")
            try:
                with open(path, encoding="ascii", errors="replace") as fh:
                    kept, scanned, truncated = _collect(fh, parse_proc_line, port, deadline)
                flows, flows_source = kept, "/proc/net/nf_conntrack"
                sources.append(SourceStatus("/proc/net/nf_conntrack", True, f"{scanned} entries scanned"))
            except FileNotFoundError:
                sources.append(SourceStatus("/proc/net/nf_conntrack", False,
                                            "missing (CONFIG_NF_CONNTRACK_PROCFS off, or nf_conntrack "
                                            "not loaded)"))
            except OSError as exc:
                sources.append(SourceStatus("/proc/net/nf_conntrack", False, str(exc)))
    if reader is not None:
        try:
            reader.close()
        except Exception as exc:  # noqa: BLE001
            reraise_bug(exc)
            pass

    return ConntrackSnapshot(taken_at=taken_at, netns=netns, kernel=kernel, net_admin=net_admin,
                             counters=counters, count=count, count_source=count_source, max=cmax,
                             sysctls=sysctls, entries=flows, entries_source=flows_source,
                             entries_scanned=scanned, entries_truncated=truncated, port=port,
                             sources=tuple(sources), _monotonic=mono)


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
