"""The caches on a name's path and the upstream each one forwards it to, from the Corefile
trace: what `diagnose` asks directly to tell a cache answering past its upstream
(toolkit.triage.stalecache). Pure.

A hop is a cache when its server block runs CoreDNS's ``cache`` plugin (NodeLocal DNSCache's
node-cache runs the same plugin). Its ``serve_stale`` option (coredns plugin/cache/setup.go,
``serve_stale [DURATION] [REFRESH_MODE]`` in 1.12.1, ``... [TTL]`` added by 1.14) makes it
answer an expired entry, for up to DURATION (default 1h), with TTL 0 (handler.go: "Adjust the
time to get a 0 TTL in the reply built from a stale item") or with the TTL configured in 1.14,
while its upstream fails.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from toolkit.corefile.document import Corefile, Directive, ServerBlock
from toolkit.corefile.hops import Hop, TraceResult
from toolkit.corefile.plugins.forward import parse_target
from toolkit.corefile.roles import CorefileRole


@dataclass(frozen=True, kw_only=True)
class CacheHop:
    """One hop of the trace that forwards the name on: where it is, whether it caches, and the
    upstream it forwards the name to (the first address target of its forward)."""

    corefile: str
    block: str
    line: int  # the block's line (file line when known)
    cache: bool
    cache_line: int | None  # the ``cache`` directive's line in the Corefile
    cache_text: str | None  # the directive as written, e.g. "cache 30 { serve_stale }"
    serve_stale: bool | None  # None: no cache plugin
    upstream: str  # address of the next hop (host of the forward target)
    upstream_port: int
    node_cache: bool = False  # the Corefile is NodeLocal DNSCache's (roles.assemble)
    # the most TTL its positive entries are given (None: no cache, or keepttl)
    max_ttl: int | None = None

    def where(self) -> str:
        """Corefile, block and line, for texts."""
        return f"{self.corefile} block {self.block} (line {self.line})"


def _directive_text(d: Directive) -> str:
    head = " ".join((d.name, *d.args))
    if not d.block:
        return head
    return head + " { " + "; ".join(" ".join((s.name, *s.args)) for s in d.block) + " }"


# CoreDNS's cap on a cached answer's TTL when none is given: dnsutil.MaximumDefaulTTL (1 h).
DEFAULT_MAX_TTL = 3600


def max_ttl(d: Directive) -> int | None:
    """The TTL cap of ``cache``'s positive answers (plugin/cache/setup.go: ``cache [TTL]``, then
    ``success CAPACITY [TTL]`` overrides it); None with ``keepttl`` (the original TTL is kept)."""
    if d.has("keepttl"):
        return None
    ttl = int(d.args[0]) if d.args and d.args[0].isdigit() else DEFAULT_MAX_TTL
    for s in d.sub("success"):
        if len(s.args) > 1 and s.args[1].isdigit():
            ttl = int(s.args[1])
    return ttl


def _line_of(cf: Corefile | None, d: Directive | None) -> int | None:
    if d is None:
        return None
    return (cf.file_line(d.line) if cf is not None else None) or d.line


def _block_of(trace: TraceResult, hop: Hop) -> tuple[Corefile, ServerBlock] | None:
    cfs: Sequence[Corefile] = trace.assembly.corefiles if trace.assembly is not None else ()
    for cf in cfs:
        if cf.name != hop.corefile:
            continue
        for b in cf.blocks:
            if b.line == hop.line and b.label == hop.block:
                return cf, b
    return None


def cache_hops(trace: TraceResult) -> tuple[CacheHop, ...]:
    """The hops that forward the name to an address, in path order, each with its cache; the
    chain ends at the first forward whose target is no address."""
    out: list[CacheHop] = []
    for h in trace.hops:
        if h.next is None:
            continue
        target = parse_target(h.next.target or (h.next.targets[0] if h.next.targets else ""))
        if target.address is None:
            # a placeholder (__PILLAR__CLUSTER__DNS__, __PILLAR__UPSTREAM__SERVERS__: filled by
            # node-cache when it starts), a file or a name: the server after it is unknown, and
            # pairing a later hop with the wrong server would compare the wrong answers
            break
        found = _block_of(trace, h)
        cache = found[1].get("cache")[0] if found and found[1].has("cache") else None
        cf = found[0] if found else None
        out.append(CacheHop(
            corefile=h.corefile, block=h.block, line=h.file_line or h.line, cache=cache is not None,
            cache_line=_line_of(cf, cache),
            cache_text=_directive_text(cache) if cache else None,
            serve_stale=cache.has("serve_stale") if cache else None,
            upstream=target.address, upstream_port=target.port or 53,
            node_cache=h.role in (CorefileRole.NODE_CACHE, CorefileRole.NODE_CACHE_SECONDARY),
            max_ttl=max_ttl(cache) if cache else None))
    return tuple(out)


def trace_cache_hops(name: str, paths: Sequence[str], roles: Sequence[str] = ()) -> tuple[CacheHop, ...]:
    """Load the Corefiles (as `diagnose --corefile` does), trace NAME, and give its hops."""
    from toolkit.corefile.bridge import load_trace

    return cache_hops(load_trace(name, paths, roles))
