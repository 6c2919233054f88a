"""Fleet merge: many podtriage JSON documents (one per pod or node) into one report.

Input is text as it comes from files, pipes or container logs (toolkit.report.reader:
documents concatenated with or without separators, NDJSON, log prefixes): only documents that
match their command's schema are merged; every input that looked like a document and could
not be used is counted and named, and makes the fleet verdict at best ``indeterminate``.
Pure logic: no I/O beyond the text handed in.

Reports are grouped by what an operator compares first: the verdict, the addresses the name
resolved to, and the nameserver path the pod asked. A node whose pods all land outside the
group most pods share is the "one node's NodeLocal cache is stale" shape of incident: it is
named, with the nameserver its pods asked.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from toolkit.kube.stale import FLEET_CODE as STALE_CODE, stale_findings, stale_table, stale_targets
from toolkit.model import VERDICT_PRIORITY, Finding, Report, Severity, Table, Verdict
from toolkit.report.reader import Document, Unusable, read_documents

# Any: a document is foreign input (a file, a log, an older image) that matched its schema
# (toolkit.report.reader); fields are still read with isinstance.
DocumentView = Mapping[str, Any]    # a Document (or a part of one) that is only read
# Commands whose document is about one name (its addresses can be compared across the fleet).
_NAME_COMMANDS = ("diagnose", "resolve")
_RESOLV_CONF_ROLE = "resolv.conf"    # the role of the pod's own nameservers in a document
# Fleet findings that name the nodes they explain (no group finding repeats them).
_EXPLAINING_CODES = ("answers-differ", "node-differs", STALE_CODE)


@dataclass(frozen=True, kw_only=True)
class Source:
    """One podtriage document and where it came from."""

    doc: DocumentView
    origin: str                      # file name, '-' or 'pod shop/web-1'


@dataclass(frozen=True, kw_only=True)
class Missing:
    """A pod or node that gave no document (the fleet runner reports these)."""

    where: str                       # 'pod shop/web-1' or 'node worker-3'
    node: str | None
    reason: str
    exit_code: int | None = None


@dataclass(frozen=True, kw_only=True)
class Entry:
    """One document as the merge compares it."""

    origin: str
    command: str
    verdict: Verdict
    addresses: tuple[str, ...]
    servers: tuple[str, ...]
    node: str | None
    pod: str | None
    top: str                          # summary of the most severe finding ('' when none)
    name: str | None = None           # the name diagnosed or resolved


@dataclass(frozen=True, kw_only=True, eq=False)
class Group:
    """Documents with the same verdict, command, addresses and nameservers."""

    verdict: Verdict
    command: str
    addresses: tuple[str, ...]
    servers: tuple[str, ...]
    entries: tuple[Entry, ...] = field(default_factory=tuple)

    @cached_property
    def nodes(self) -> list[str]:
        """The nodes the group's documents came from."""
        return sorted({e.node for e in self.entries if e.node})

    @cached_property
    def unplaced(self) -> bool:
        """Some of the group's documents name no node."""
        return any(not e.node for e in self.entries)

    @cached_property
    def pods(self) -> list[str]:
        """The pods (namespace/name) the group's documents came from."""
        return sorted({e.pod for e in self.entries if e.pod})

    def to_json(self) -> dict[str, object]:
        """The group in the merged report's data."""
        return {"verdict": self.verdict.value, "command": self.command,
                "addresses": list(self.addresses), "servers": list(self.servers),
                "nodes": self.nodes, "pods": self.pods, "count": len(self.entries)}


# ---------------------------------------------------------------- reading
def documents_in(text: str, origin: str = "-") -> list[Document]:
    """Every podtriage document in ``text`` that matches its schema, in order
    (toolkit.report.reader; ``read_documents`` also names what could not be used)."""
    return list(read_documents(text, origin).documents)


# ---------------------------------------------------------------- features of one report
def _context(doc: DocumentView) -> tuple[str | None, str | None]:
    raw = doc.get("context")
    ctx: DocumentView = raw if isinstance(raw, dict) else {}
    node = ctx.get("node") if isinstance(ctx.get("node"), str) else None
    pod = ctx.get("pod") if isinstance(ctx.get("pod"), str) else None
    ns = ctx.get("namespace") if isinstance(ctx.get("namespace"), str) else None
    if pod and ns:
        pod = "%s/%s" % (ns, pod)
    return node, pod


def _addresses(doc: DocumentView) -> tuple[str, ...]:
    out: set[str] = set()
    for a in doc.get("addresses") or []:
        if isinstance(a, dict) and isinstance(a.get("address"), str):
            out.add(a["address"])
        elif isinstance(a, str):
            out.add(a)
    if not out:                       # resolve: what each path answered
        for p in doc.get("paths") or []:
            if isinstance(p, dict):
                out.update(x for x in p.get("addresses") or [] if isinstance(x, str))
    return tuple(sorted(out))


def _servers(doc: DocumentView) -> tuple[str, ...]:
    """The pod's own nameserver path: the resolv.conf servers (references and --server
    extras are not the path the application uses)."""
    out: list[str] = []
    for key in ("answers", "servers"):
        for a in doc.get(key) or []:
            if not isinstance(a, dict):
                continue
            addr = a.get("server") if key == "answers" else a.get("address")
            if isinstance(addr, str) and a.get("role") in (None, _RESOLV_CONF_ROLE) \
                    and addr not in out:
                out.append(addr)
        if out:
            break
    return tuple(sorted(out))


def _verdict(doc: DocumentView) -> Verdict:
    try:
        return Verdict(doc.get("verdict"))
    except ValueError:
        return Verdict.INDETERMINATE


_SEVERITY_RANK = {Severity.CRITICAL.value: 2, Severity.WARNING.value: 1, Severity.INFO.value: 0}


def _top(doc: DocumentView) -> str:
    best, rank = "", -1
    for f in doc.get("findings") or []:
        if isinstance(f, dict) and isinstance(f.get("summary"), str):
            severity = f.get("severity")
            r = _SEVERITY_RANK.get(severity, 0) if isinstance(severity, str) else 0
            if r > rank:
                best, rank = f["summary"], r
    return best


def entry_of(src: Source) -> Entry:
    """What the merge compares in one document."""
    node, pod = _context(src.doc)
    name = src.doc.get("name") if isinstance(src.doc.get("name"), str) else None
    return Entry(origin=src.origin, command=str(src.doc.get("command")), verdict=_verdict(src.doc),
                 addresses=_addresses(src.doc), servers=_servers(src.doc), node=node, pod=pod,
                 top=_top(src.doc), name=name)


# ---------------------------------------------------------------- merging
def _worst(verdicts: Iterable[Verdict]) -> Verdict:
    vs = set(verdicts)
    bad = [v for v in VERDICT_PRIORITY if v in vs and v is not Verdict.OK]
    return bad[0] if bad else Verdict.OK


def _group(entries: Sequence[Entry]) -> list[Group]:
    by: dict[tuple[Verdict, str, tuple[str, ...], tuple[str, ...]], list[Entry]] = {}
    for e in entries:
        by.setdefault((e.verdict, e.command, e.addresses, e.servers), []).append(e)
    groups = [Group(verdict=k[0], command=k[1], addresses=k[2], servers=k[3], entries=tuple(v))
              for k, v in by.items()]
    # largest first; among equals a healthy group first (it is the baseline others differ from)
    groups.sort(key=lambda g: (-len(g.entries), g.verdict is not Verdict.OK,
                               VERDICT_PRIORITY.index(g.verdict), g.addresses, g.servers))
    return groups


def _describe(g: Group) -> str:
    what = g.verdict.value
    if g.addresses:
        what += " (%s)" % ", ".join(g.addresses)
    return what


def _node_remedy(node: str, servers: Sequence[str], *, healthy: bool) -> str:
    """Where to look: the odd node, or, when the odd node is the one that works while the
    rest fail, what it has that the others lack."""
    if healthy:
        return ("node %s is the one that works while the others fail: the fault is shared by "
                "the other nodes (their NodeLocal caches, CoreDNS, the DNS Service's path); "
                "compare them with node %s" % (node, node))
    return "look at node %s first%s: its pods are the only ones that see this" % (
        node, (" and at its nameserver %s (NodeLocal DNSCache: restart the node's cache pod, "
               "compare its answer with CoreDNS)" % ", ".join(servers)) if servers else "")


def _node_findings(groups: Sequence[Group], entries: Sequence[Entry]) -> list[Finding]:
    """A node all of whose reports sit outside the baseline group, while other nodes' reports
    are in it: the fault is on that node (its NodeLocal cache, its conntrack, its CNI)."""
    if len(groups) < 2:
        return []
    base = groups[0]
    base_nodes = set(base.nodes)
    out: list[Finding] = []
    by_node: dict[str, list[Entry]] = {}
    for e in entries:
        if e.node:
            by_node.setdefault(e.node, []).append(e)
    if len(by_node) < 2:
        return []
    # Linear in the fleet (issue 23: 20,000 reports): each node's groups, looked up once.
    groups_of: dict[str, list[Group]] = {}
    for g in groups[1:]:
        for node in g.nodes:
            groups_of.setdefault(node, []).append(g)
    for node in sorted(by_node):
        mine = by_node[node]
        if node in base_nodes or not base_nodes - {node}:
            continue
        theirs = groups_of.get(node, [])
        only_here = all(g.nodes == [node] and not g.unplaced for g in theirs)
        servers = sorted({s for e in mine for s in e.servers})
        verdicts = sorted({e.verdict.value for e in mine})
        severity = Severity.CRITICAL if any(e.verdict is not Verdict.OK for e in mine) \
            else Severity.WARNING
        kind = "pods" if any(e.pod for e in mine) else "reports"
        summary = "all %d %s on node %s differ from the rest: %s%s; the others get %s" % (
            len(mine), kind, node, "; ".join(_describe(g) for g in theirs),
            (" through %s" % ", ".join(servers)) if servers else "", _describe(base))
        evidence = ["%s: %s%s" % (e.pod or e.origin, _describe_entry(e),
                                  (" - " + e.top) if e.top else "") for e in mine]
        if not only_here:
            evidence.append("pods on other nodes share this result too")
        out.append(Finding(
            code="node-differs", severity=severity, summary=summary, evidence=tuple(evidence),
            remedy=_node_remedy(node, servers, healthy=severity is Severity.WARNING
                                and base.verdict is not Verdict.OK),
            verdict=_worst(e.verdict for e in mine) if severity is Severity.CRITICAL else None,
            data={"node": node, "servers": servers, "verdicts": verdicts,
                  "pods": sorted(e.pod for e in mine if e.pod)}))
    return out


def _answer_findings(groups: Sequence[Group]) -> list[Finding]:
    """The fleet as its own reference: where pods that asked for the same name got a set of
    addresses that works (their report is ok) and other pods got other addresses and fail,
    the other answer is a bad answer (DESIGN "bad-answer": resolvers disagree, and the
    wrong address does not serve), even when each failing pod alone could not tell a stale
    answer from a dead host."""
    out: list[Finding] = []
    good = [g for g in groups if g.verdict is Verdict.OK and g.addresses
            and g.command in _NAME_COMMANDS]
    for g in groups:
        if g.verdict in (Verdict.OK, Verdict.BAD_ANSWER) or not g.addresses \
                or g.command not in _NAME_COMMANDS:
            continue
        names = {e.name for e in g.entries}
        ref = next((b for b in good if {e.name for e in b.entries} == names
                    and b.command == g.command and set(b.addresses).isdisjoint(g.addresses)),
                   None)
        if ref is None or len(names) != 1 or None in names:
            continue
        name = names.pop()
        where = ", ".join(g.nodes) or ", ".join(g.pods)
        out.append(Finding(
            code="answers-differ", severity=Severity.CRITICAL,
            summary="%s resolves to %s on %s%s, but to %s on %s, where it works: the "
                    "answer on %s is wrong, not the host" % (
                        name, ", ".join(g.addresses), where,
                        (" through %s" % ", ".join(g.servers)) if g.servers else "",
                        ", ".join(ref.addresses), ", ".join(ref.nodes) or ", ".join(ref.pods),
                        where),
            evidence=tuple("%s: %s" % (e.pod or e.node or e.origin, _describe_entry(e))
                           for e in g.entries + ref.entries[:3]),
            remedy=("compare the nameservers' answers for %s: flush or restart the cache that "
                    "serves %s%s" % (name, ", ".join(g.addresses),
                                     (" (%s on %s)" % (", ".join(g.servers), where))
                                     if g.servers else "")),
            verdict=Verdict.BAD_ANSWER,
            data={"name": name, "addresses": list(g.addresses), "servers": list(g.servers),
                  "nodes": g.nodes, "expected": list(ref.addresses)}))
    return out


def _describe_entry(e: Entry) -> str:
    return e.verdict.value + (" (%s)" % ", ".join(e.addresses) if e.addresses else "")


def _partial_finding(entries: Sequence[Entry]) -> Finding | None:
    """Some reports are not ok and some are: say how many, and where when it is a subset of
    the nodes."""
    bad = [e for e in entries if e.verdict is not Verdict.OK]
    if not bad or len(bad) >= len(entries):
        return None
    where = sorted({e.node for e in bad if e.node})
    return Finding(
        code="partial", severity=Severity.WARNING,
        summary="%d of %d reports are not ok%s" % (
            len(bad), len(entries), (", all on %s" % ", ".join(where)) if
            where and len(where) < len({e.node for e in entries if e.node}) else ""),
        evidence=tuple("%s: %s" % (e.pod or e.node or e.origin, _describe_entry(e))
                       for e in bad),
        remedy="compare a failing pod with a healthy one: the difference is the cause",
        verdict=None)


def _group_findings(groups: Sequence[Group], entries: Sequence[Entry],
                    findings: Sequence[Finding]) -> list[Finding]:
    """One finding per failing group that the fleet findings above do not already name."""
    nodes: set[str | None] = set()
    for f in findings:
        if f.code in _EXPLAINING_CODES:
            nodes.update(f.data.get("nodes") or [f.data.get("node")])
    explained = {e.pod or e.origin for e in entries if e.node in nodes}
    out: list[Finding] = []
    for g in groups:
        if g.verdict is Verdict.OK or all((e.pod or e.origin) in explained for e in g.entries):
            continue       # a failing group the findings above already name
        first = g.entries[0]
        out.append(Finding(
            code="group", severity=Severity.CRITICAL,
            summary="%d %s: %s%s%s" % (
                len(g.entries), "report" if len(g.entries) == 1 else "reports", _describe(g),
                (" through %s" % ", ".join(g.servers)) if g.servers else "",
                (" on %s" % ", ".join(g.nodes)) if g.nodes else ""),
            evidence=tuple(x for x in ([first.top] if first.top else [])) +
            tuple("%s" % (e.pod or e.node or e.origin) for e in g.entries),
            remedy="see the first report of the group for the full evidence",
            verdict=g.verdict, data=g.to_json()))
    return out


def _missing_finding(m: Missing) -> Finding:
    return Finding(
        code="no-report", severity=Severity.WARNING,
        summary="no report from %s: %s" % (m.where, m.reason),
        remedy="run podtriage there alone to see why", verdict=None,
        data={"where": m.where, "node": m.node, "exit_code": m.exit_code})


def _tables(groups: Sequence[Group], entries: Sequence[Entry]) -> tuple[Table, Table]:
    rows = tuple((str(len(g.entries)), g.verdict.value,
                  ", ".join(g.addresses) or "-", ", ".join(g.servers) or "-",
                  ", ".join(g.nodes) or "-", ", ".join(g.pods) or "-") for g in groups)
    per = tuple((e.node or "-", e.pod or e.origin, e.verdict.value,
                 ", ".join(e.addresses) or "-", ", ".join(e.servers) or "-", e.top or "-")
                for e in sorted(entries, key=lambda e: (e.node or "", e.pod or e.origin)))
    return (Table(title="Groups", columns=("count", "verdict", "addresses", "servers",
                                           "nodes", "pods"), rows=rows),
            Table(title="Reports", columns=("node", "pod / source", "verdict", "addresses",
                                            "servers", "top finding"), rows=per))


# At most this many unusable inputs are listed one by one (all are counted).
MAX_UNUSABLE_LISTED = 1000


def _unusable_finding(unusable: Sequence[Unusable]) -> Finding:
    """Inputs that looked like documents and could not be used: named, never dropped."""
    reasons = Counter(u.reason.split(":", 1)[0] for u in unusable)
    first = unusable[0]
    return Finding(
        code="unusable-input", severity=Severity.WARNING,
        summary="%d input%s could not be used (first: %s %s: %s); the fleet verdict cannot be ok" % (
            len(unusable), "" if len(unusable) == 1 else "s", first.origin, first.where, first.reason),
        evidence=tuple("%s %s: %s" % (u.origin, u.where, u.reason) for u in unusable[:50]),
        remedy="give merge whole documents (podtriage ... -o json or -o ndjson); a truncated log "
               "or a document edited by hand is not evidence",
        verdict=Verdict.INDETERMINATE,
        data={"count": len(unusable), "reasons": dict(reasons.most_common(20))})


def merge(sources: Sequence[Source], missing: Sequence[Missing] = (),
          subject: str = "", unusable: Sequence[Unusable] = ()) -> Report:
    """One fleet report. ``verdict`` is ok only when every report is ok, none is missing and
    every input could be used; otherwise the most important verdict (VERDICT_PRIORITY) among
    the reports and the fleet's own critical findings (``answers-differ`` makes it
    bad-answer), at least ``indeterminate``. Every count in the summary, the findings and the
    tables comes from the same ``entries``."""
    entries = [entry_of(s) for s in sources]
    groups = _group(entries)
    verdicts = Counter(e.verdict.value for e in entries)
    findings: list[Finding] = []
    findings += _answer_findings(groups)
    # issue 26: which old CoreDNS address still draws DNS flows, where
    stale = stale_targets([(e.node or e.pod or e.origin, s.doc) for e, s in zip(entries, sources, strict=True)])
    findings += stale_findings(stale)
    findings += _node_findings(groups, entries)
    partial = _partial_finding(entries)
    if partial is not None:
        findings.append(partial)
    findings += _group_findings(groups, entries, findings)
    findings += [_missing_finding(m) for m in missing]
    if unusable:
        findings.append(_unusable_finding(unusable))
    verdict = _worst([e.verdict for e in entries] +
                     [f.verdict for f in findings if f.verdict is not None
                      and f.severity is Severity.CRITICAL])
    if verdict is Verdict.OK and (missing or unusable or not entries):
        verdict = Verdict.INDETERMINATE
    data = {"reports": len(entries), "verdicts": dict(sorted(verdicts.items())),
            "groups": [g.to_json() for g in groups],
            "missing": [{"where": m.where, "node": m.node, "reason": m.reason,
                         "exit_code": m.exit_code} for m in missing],
            "unusable": [{"origin": u.origin, "where": u.where, "reason": u.reason}
                         for u in unusable[:MAX_UNUSABLE_LISTED]],
            "unusable_count": len(unusable),
            "nodes": sorted({e.node for e in entries if e.node}),
            "stale_dns_targets": [t.to_json() for t in stale]}
    what = "%d report%s" % (len(entries), "" if len(entries) == 1 else "s")
    if unusable:
        what += ", %d unusable" % len(unusable)
    return Report(command="merge", verdict=verdict, findings=tuple(findings), data=data,
                  tables=_tables(groups, entries) + ((stale_table(stale),) if stale else ()),
                  subject=subject or what)
