"""What `diagnose --corefile` takes from the Corefiles: the block and upstream that answer
the name, independent upstreams to use as references, and the server behind the pod's cache.

Kept apart from trace/lint so that diagnose depends on one small function.
"""

from __future__ import annotations

from collections.abc import Sequence

from toolkit.corefile.hops import Hop, TraceResult
from toolkit.corefile.listeners import listen_map
from toolkit.corefile.plugins.forward import default_forward, parse_target
from toolkit.corefile.roles import assemble, parse_role_overrides
from toolkit.corefile.source import load_all
from toolkit.corefile.trace import trace_name
from toolkit.dns.walk import Server, ServerRole
from toolkit.model import Finding, Severity

# (findings, hop descriptions, extra references, servers behind the first cache)
Evidence = tuple[list[Finding], list[str], list[Server], list[Server]]


def describe_hop(h: Hop) -> str:
    """One line for a hop: where it is and what answers or where it forwards."""
    where = f"{h.corefile} block {h.block} (line {h.file_line or h.line})"
    if h.next is None:
        return f"{where}: {h.plugin or 'no plugin'} answers ({h.outcome})"
    stub = " [stub forward: not the default upstream]" if h.stub_forward else ""
    targets = ", ".join(h.next.targets) or h.next.target
    return f"{where}: {h.plugin} -> {targets} over {h.next.transport}{stub}"


def _behind(trace: TraceResult) -> list[Server]:
    """Servers behind the first hop: what the pod's cache forwards to (e.g. the CoreDNS
    Service address), asked directly when the cache itself does not answer."""
    behind: list[Server] = []
    if trace.hops and trace.hops[0].next is not None:
        for label in trace.hops[0].next.targets:
            t = parse_target(label)
            if t.address:
                behind.append(Server(t.address, ServerRole.SERVER, t.port or 53))
    return behind


def _stub_finding(trace: TraceResult, h: Hop, hops: list[str]) -> Finding:
    return Finding(
        code="corefile-stub-forward", severity=Severity.WARNING,
        summary=f"{trace.name} is answered by {h.corefile} block {h.block} (line {h.file_line or h.line}), "
        f"which forwards it to {', '.join(h.next.targets) if h.next else '?'} instead of the "
        "config's default upstream",
        evidence=tuple(hops),
        remedy="if that server is retired or stale, re-point or delete the block, then flush the caches "
        "(restart CoreDNS and NodeLocal DNSCache)",
        verdict=None, data={"corefile": h.corefile, "block": h.block, "line": h.line, "file_line": h.file_line,
                            "upstreams": list(h.next.targets) if h.next else []})


def load_trace(name: str, paths: Sequence[str], roles: Sequence[str] = ()) -> TraceResult:
    """Read the Corefiles once (a path may be a pipe, /dev/fd/N from the kubectl plugin) and
    trace NAME through them. ROLES: ``SELECTOR=ROLE`` overrides (diagnose --corefile-role)."""
    asm = assemble(load_all(list(paths)), overrides=parse_role_overrides(roles))
    return trace_name(name, list(asm.corefiles), assembly=asm)


def corefile_evidence(name: str, paths: Sequence[str], notes: list[str],
                      roles: Sequence[str] = (), trace: TraceResult | None = None) -> Evidence:
    """(findings, hop descriptions, extra references, servers behind the first cache), from
    ``trace`` when given (load_trace), else from the paths.

    ROLES: ``SELECTOR=ROLE`` overrides (diagnose --corefile-role), see roles.assemble."""
    if trace is None:
        trace = load_trace(name, paths, roles)
    corefiles = list(trace.assembly.corefiles) if trace.assembly is not None else []
    # The operator must see what each Corefile was taken for.
    for r in trace.roles:
        notes.append(f"corefile {r.corefile}: taken for {r.role.value} ({r.source.value}: "
                     f"{'; '.join(r.evidence)})")
    hops = [describe_hop(h) for h in trace.hops]
    listen = listen_map(corefiles, {})
    on_path: set[str] = set()
    for h in trace.hops:
        if h.next is not None:
            on_path.update(parse_target(t).host for t in h.next.targets)
    behind = _behind(trace)
    # Independent references: the default upstreams ('.' blocks) that this name does not go
    # through, and that are not another Corefile's own listen address.
    refs: list[Server] = []
    for cf in corefiles:
        spec = default_forward(cf, 53)
        if spec is None:
            continue
        for t in spec.targets:
            addr = t.address
            if addr and addr not in on_path and addr not in listen and addr not in {b.address for b in behind}:
                refs.append(Server(addr, ServerRole.REFERENCE, t.port or 53))
    findings = [_stub_finding(trace, h, hops) for h in trace.hops if h.stub_forward]
    for p in trace.problems:
        notes.append(f"corefile trace: {p}")
    if refs:
        notes.append("references from the Corefiles' default upstreams: "
                     + ", ".join(r.address for r in refs))
    return findings, hops, refs, behind
