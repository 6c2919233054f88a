"""The Report of ``corefile trace``: the path as a table and JSON, and findings for a path
that ends in a stub forward, a dead end or an upstream that is not an address."""

from __future__ import annotations

from toolkit.corefile.hops import Hop, NextHop, TraceResult
from toolkit.corefile.plugins.forward import TargetKind
from toolkit.corefile.roles import role_json, role_rows
from toolkit.model import Finding, Report, Severity, Table, Verdict


def _stub_finding(result: TraceResult, h: Hop, nxt: NextHop) -> Finding:
    return Finding(
        code="trace-stub-forward", severity=Severity.WARNING,
        summary=f"{result.name} is answered by stub block {h.block} of {h.corefile} (line {h.line}), "
                f"which forwards to {', '.join(nxt.targets)} instead of the default upstream",
        evidence=tuple(n for n in h.notes if "stub" in n) + (f"via: {h.via}",),
        remedy="check the stub target answers like the default upstream (`podtriage corefile "
               "check`); re-point or delete the block, then flush the caches",
        verdict=None, data={"corefile": h.corefile, "block": list(h.zones), "line": h.line,
                            "file_line": h.file_line, "targets": list(nxt.targets)})


def trace_findings(result: TraceResult) -> list[Finding]:
    """Stub forwards on the path, dead ends, and a final upstream that is not an address."""
    findings = [_stub_finding(result, h, h.next) for h in result.hops
                if h.stub_forward and h.next is not None]
    for p in result.problems:
        findings.append(Finding(code="trace-dead-end", severity=Severity.WARNING, summary=p,
                                evidence=(), remedy="add a server block or plugin that answers "
                                                    "this name", verdict=None, data={}))
    final = result.final
    if final is not None and final.kind not in (TargetKind.IP, TargetKind.COREFILE):
        findings.append(Finding(code="trace-upstream-not-address", severity=Severity.INFO,
                                summary=f"final upstream {final.target}: {final.note}",
                                evidence=(), remedy="", verdict=None,
                                data={"target": final.target}))
    return findings


def _next_json(n: NextHop | None) -> dict[str, object] | None:
    if n is None:
        return None
    return {"target": n.target, "transport": n.transport, "kind": n.kind, "note": n.note,
            "targets": n.targets}


def _hop_json(h: Hop) -> dict[str, object]:
    return {"corefile": h.corefile, "block": h.block, "line": h.line, "file_line": h.file_line,
            "zones": h.zones, "port": h.port, "name": h.name, "plugin": h.plugin,
            "plugin_line": h.plugin_line, "next": _next_json(h.next), "via": h.via,
            "outcome": h.outcome, "notes": h.notes, "stub_forward": h.stub_forward,
            "role": h.role, "conditional_answerers": h.conditional, "rcode": h.rcode,
            "qtype": h.qtype}


def _hop_row(i: int, h: Hop) -> tuple[str, ...]:
    line = str(h.line) + (f" ({h.file_line})" if h.file_line and h.file_line != h.line else "")
    return (str(i + 1), h.corefile, h.block, line, h.name, h.plugin or "-",
            f"{h.next.target} over {h.next.transport}" if h.next else "-")


def trace_report(result: TraceResult) -> Report:
    """The Report of ``corefile trace``: ``ok`` unless the path ends in a stub forward, no
    server block, no answering plugin or a loop (then ``dns-error``: the config misroutes)."""
    findings = trace_findings(result)
    verdict = Verdict.DNS_ERROR if any(f.severity is not Severity.INFO for f in findings) \
        else Verdict.OK
    table = Table(f"Path of {result.name}", ("hop", "corefile", "block", "line (file line)",
                                             "name", "plugin", "next"),
                  tuple(_hop_row(i, h) for i, h in enumerate(result.hops)))
    notes = tuple(n for h in result.hops for n in h.notes) + result.notes
    roles_table = Table("Corefiles (what each was taken for)",
                        ("corefile", "role", "from", "why"),
                        role_rows(result.assembly) if result.assembly else ())
    return Report(command="corefile trace", verdict=verdict, findings=tuple(findings),
                  data={"name": result.name, "qtype": result.qtype,
                        "hops": [_hop_json(h) for h in result.hops],
                        "corefiles": role_json(result.assembly) if result.assembly else [],
                        "outcome": result.outcome, "final": _next_json(result.final),
                        "rcode": result.rcode, "coredns": list(result.versions),
                        "answered_by": result.hops[-1].plugin if result.hops else None},
                  tables=(table, roles_table), subject=result.name,
                  notes=(result.outcome,) + notes)
