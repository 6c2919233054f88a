"""Conntrack statistics: per-CPU counters from procfs or ctnetlink, summed, and deltas.

Canonical names are those of ctnetlink and `conntrack -S` (found, invalid, insert,
insert_failed, drop, early_drop, error, search_restart, clash_resolve, chain_toolong).
/proc/net/stat/nf_conntrack prints one hex line per possible CPU under a header naming
the columns; the names changed over time (``searched`` became ``clashres`` in 5.10,
``delete_list`` became ``chainlength`` in 5.15, ``icmp_error`` is ctnetlink's ``error``),
so columns are mapped by the header, never by position.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

# The counters podtriage reports, in display order.
COUNTERS = ("found", "invalid", "insert", "insert_failed", "drop", "early_drop", "error",
            "search_restart", "clash_resolve", "chain_toolong")

# procfs header column -> canonical name. Unlisted columns (always-0 legacy ones) are kept
# under their own name but not reported.
PROC_COLUMNS = {
    "clashres": "clash_resolve",
    "chainlength": "chain_toolong",
    "icmp_error": "error",
}

# Counters are 32-bit per CPU (unsigned int in struct ip_conntrack_stat): deltas wrap.
WRAP = 1 << 32


class CounterSource(StrEnum):
    """Where the per-CPU counters were read."""

    CTNETLINK = "ctnetlink"  # IPCTNL_MSG_CT_GET_STATS_CPU (needs NET_ADMIN)
    PROCFS = "procfs"  # /proc/net/stat/nf_conntrack


@dataclass(frozen=True)
class CpuCounters:
    """One CPU's counters, by canonical name."""

    cpu: int
    values: Mapping[str, int]


@dataclass(frozen=True)
class Counters:
    """Per-CPU counters of one network namespace, as read from one source."""

    source: CounterSource
    per_cpu: tuple[CpuCounters, ...]
    available: tuple[str, ...]  # canonical counters this kernel/source exposes
    entries: int | None = None  # procfs first column: the netns entry count

    __json_properties__ = ("total",)

    @property
    def total(self) -> dict[str, int]:
        """Each available counter summed over the CPUs."""
        return {name: sum(c.values.get(name, 0) for c in self.per_cpu) for name in self.available}

    def get(self, name: str) -> int | None:
        """The total of counter ``name``, or None when this kernel/source does not expose it."""
        return self.total.get(name) if name in self.available else None


class ParseError(ValueError):
    """A counters source whose data is not in the form this kernel family prints."""


def parse_proc_stat(text: str) -> Counters:
    """Parse /proc/net/stat/nf_conntrack (header + one hex line per CPU)."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise ParseError("empty file")
    header = lines[0].split()
    if not header or header[0] != "entries":
        raise ParseError(f"unexpected header: {lines[0][:80]!r}")
    names = [PROC_COLUMNS.get(h, h) for h in header]
    per_cpu = []
    entries = None
    for cpu, line in enumerate(lines[1:]):
        fields = line.split()
        if len(fields) != len(names):
            raise ParseError(f"line {cpu + 2}: {len(fields)} fields under {len(names)} columns")
        try:
            values = {n: int(v, 16) for n, v in zip(names, fields, strict=True)}  # lengths checked above
        except ValueError as exc:
            raise ParseError(f"line {cpu + 2}: {exc}") from None
        entries = values.pop("entries")
        per_cpu.append(CpuCounters(cpu=cpu, values={k: v for k, v in values.items() if k in COUNTERS}))
    available = tuple(c for c in COUNTERS if c in names)
    # search_restart etc. exist on every kernel we care about; clash_resolve only from 5.10's
    # header (5.9 printed it under "searched", which older kernels left at 0: not trusted).
    return Counters(source=CounterSource.PROCFS, per_cpu=tuple(per_cpu), available=available, entries=entries)


def from_netlink(stats: Iterable[Mapping[str, int]]) -> Counters:
    """From pyroute2 ``Conntrack().stat()``: one dict per CPU, ``{"cpu": 0, "found": ...}``.

    pyroute2 names the attributes after CTA_STATS_*; ``chain_toolong`` is CHAIN_TOOLONG.
    """
    per_cpu = []
    seen: set[str] = set()
    for i, row in enumerate(stats):
        values = {k: int(v) for k, v in row.items() if k in COUNTERS and v is not None}
        seen.update(values)
        per_cpu.append(CpuCounters(cpu=int(row.get("cpu", i)), values=values))
    if not per_cpu:
        raise ParseError("ctnetlink returned no per-CPU statistics")
    return Counters(source=CounterSource.CTNETLINK, per_cpu=tuple(per_cpu),
                    available=tuple(c for c in COUNTERS if c in seen))


def delta(before: Counters, after: Counters) -> dict[str, int]:
    """Counter increase between two reads, per CPU modulo 2**32, then summed.

    Only counters both reads expose; CPUs matched by number (hotplug: a CPU that appears
    only in ``after`` counts from 0).
    """
    names = [n for n in after.available if n in before.available]
    prev = {c.cpu: c.values for c in before.per_cpu}
    out = {n: 0 for n in names}
    for c in after.per_cpu:
        old = prev.get(c.cpu, {})
        for n in names:
            out[n] += (c.values.get(n, 0) - old.get(n, 0)) % WRAP
    return out
