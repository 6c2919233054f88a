"""Lint rules for Corefiles. Each finding names the Corefile, the block (zones) and the line
(in the Corefile and, when it maps, in the file it came from).

Rules (codes are stable):
- ``duplicate-server-block`` (critical): two blocks serve the same transport+zone+port on
  overlapping ``bind`` addresses: CoreDNS refuses to start.
- ``duplicate-plugin`` (warning): a plugin given twice in one block (the seed's double loop).
- ``missing-cache`` / ``missing-loop`` / ``missing-errors``: a block that forwards without a
  cache (warning) or without loop detection (warning); a block without ``errors`` (warning).
- ``forward-resolv-conf``: ``forward . /etc/resolv.conf``: the node's resolver may be a local
  stub (systemd-resolved 127.0.0.53, NodeLocal itself): a loop. Warning without ``loop`` in
  the block, info with it (loop makes CoreDNS exit instead of looping silently).
- ``force-tcp-prefer-udp`` (warning): both in one forward.
- ``stub-forward`` (warning): a block whose only job is to forward a zone that another block
  (``.``) also covers, to upstreams other than that block's default: the more specific block
  wins, so that zone never sees the default upstream (the seed's root cause).
- ``zone-shadow`` (info, warning when it takes names from a ``kubernetes`` zone): a more
  specific block takes part of another block's zone.
- ``unknown-plugin`` (warning): not a CoreDNS plugin, with the nearest known name;
  ``removed-plugin`` (warning) for proxy & co; ``external-plugin`` (info).
- ``plugin-order`` (info): the file lists a plugin that CoreDNS runs earlier after one that
  answers queries (``cache`` after ``forward``): CoreDNS runs by plugin.cfg, not file order.
- ``address-problem`` (warning): a key CoreDNS cannot read (bad port, unknown scheme).
- ``unresolved-import`` / ``env-placeholder`` (info); ``pillar-placeholder`` (info): the
  ``__PILLAR__*__`` placeholders of the NodeLocal DNSCache manifest, with what fills them.
- ``duplicate-fallthrough`` (warning): two ``fallthrough`` lines in one plugin block: CoreDNS
  keeps only the last (plugin/kubernetes/setup.go calls fall.F.SetZonesFromArgs per line).
- ``forward-zone-unreachable`` (warning): ``forward FROM ...`` whose FROM zone no query of the
  block can be in (``forward foo.com 1.1.1.1`` inside ``bar.com { }``): it never forwards.
- ``distribution-plugin`` (info): a plugin of a distribution's CoreDNS build
  (``ocp_dnsnameresolver``), outside a Corefile that distribution generates.

Context from roles.assemble: a node cache's blocks that send the cluster zones to the cluster
DNS are not stub forwards (NodeLocal DNSCache's design); custom import files are linted where
they are spliced in; a Corefile an operator generates (OpenShift's dns-default) gets its
best-practice findings as info, since the operator reconciles edits away; a chaos-only block
(``hostname.bind { chaos }``) needs neither ``errors`` nor ``cache``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from toolkit.corefile.document import Corefile, Directive, ServerBlock
from toolkit.corefile.names import in_zone
from toolkit.corefile.plugins.catalog import (
    ANSWERERS,
    DISTRIBUTION,
    EXTERNAL,
    FORWARDERS,
    REMOVED,
    REPEATABLE,
    is_known,
    nearest,
    order_index,
)
from toolkit.corefile.plugins.forward import default_forward, forward_spec
from toolkit.corefile.roles import (
    CLUSTER_DNS_PILLARS,
    PILLAR_RE,
    Assembly,
    CorefileRole,
    RoleAssignment,
    assemble,
    pillar_note,
    role_json,
    role_rows,
)
from toolkit.model import Finding, Report, Severity, Table, Verdict

# Plugins whose effect on a query a reader may misjudge when they are written after an answering
# plugin: they run before it whatever the file says.
_QUERY_TOUCHING = frozenset({
    "cache", "rewrite", "acl", "any", "dns64", "autopath", "template", "hosts", "kubernetes",
    "file", "auto", "etcd", "k8s_external", "header", "minimal", "dnssec", "tsig", "local",
    "chaos",
})


@dataclass(frozen=True)
class BlockSummary:
    corefile: str
    keys: tuple[str, ...]
    zones: tuple[str, ...]
    ports: tuple[int, ...]
    line: int
    file_line: int | None
    plugins: tuple[str, ...]
    bind: tuple[str, ...]


@dataclass(frozen=True)
class FileSummary:
    corefile: str
    source: str
    configmap: str | None
    key: str | None
    line_offset: int | None
    blocks: int
    snippets: tuple[str, ...]
    role: str | None = None
    role_source: str | None = None
    role_evidence: tuple[str, ...] = ()
    imported_by: str | None = None
    managed_by: str | None = None
    imported_files: tuple[str, ...] = ()


@dataclass(frozen=True)
class LintResult:
    files: tuple[FileSummary, ...]
    blocks: tuple[BlockSummary, ...]
    findings: tuple[Finding, ...]
    assembly: Assembly | None = None

    @property
    def problem(self) -> bool:
        return any(f.severity is not Severity.INFO for f in self.findings)


# Best-practice rules whose remedy is an edit of the Corefile: info when an operator owns it.
_ADVICE = frozenset({"missing-cache", "missing-loop", "missing-errors", "forward-resolv-conf"})


class _Ctx:
    def __init__(self, cf: Corefile, role: RoleAssignment | None = None) -> None:
        self.cf = cf
        self.role = role
        self.out: list[Finding] = []

    def add(self, code: str, severity: Severity, summary: str, *, block: ServerBlock | None,
            line: int | None, evidence: Sequence[str] = (), remedy: str = "",
            **extra: Any) -> None:
        managed = self.role.managed_by if self.role else None
        if managed and code in _ADVICE and severity is Severity.WARNING:
            severity = Severity.INFO
            remedy = (f"{remedy}; this Corefile is generated by {managed}, which reverts edits"
                      if remedy else f"generated by {managed}, which reverts edits")
        imported = block.imported_from if block is not None else None
        fl = None if imported else self.cf.file_line(line)
        where = f"{self.cf.name}"
        if imported:
            where += f" (spliced in from {imported})"
        if line is not None:
            where += f" line {line}"
            if fl is not None and fl != line:
                where += f" (file line {fl})"
        ev = [where + (f", block {block.label}" if block else "")] + list(evidence)
        data = {"file": self.cf.source, "corefile": self.cf.name, "configmap": self.cf.configmap,
                "key": self.cf.key, "line": line, "file_line": fl,
                "block": list(block.zones) if block else [],
                "block_line": block.line if block else None}
        data.update(extra)
        self.out.append(Finding(code=code, severity=severity, summary=summary, evidence=tuple(ev), remedy=remedy, verdict=None, data=data))


def _where(d: Directive) -> str:
    s = f"line {d.line}"
    if d.imported_from:
        src = d.imported_from if (":" in d.imported_from or "/" in d.imported_from) \
            else f"snippet {d.imported_from}"
        s += f" (from {src} imported at line {d.import_line})"
    return s


_CHAOS_NAMES = frozenset({"hostname.bind.", "id.server.", "version.bind.", "version.server.",
                          "authors.bind."})


def _chaos_only(b: ServerBlock) -> bool:
    """A block that only answers CH-class identity queries (OpenShift's `hostname.bind
    { chaos }`): nothing in it forwards or fails in a way `errors` or `cache` would help."""
    return bool(b.zones) and set(b.zones) <= _CHAOS_NAMES and set(b.plugins) <= {"chaos", "bind"}


def lint_corefile(cf: Corefile, role: RoleAssignment | None = None) -> list[Finding]:
    ctx = _Ctx(cf, role)
    if cf.fragment:
        # A *.override file nobody imports here: only its directives can be checked.
        for b in cf.blocks:
            _rule_plugins(ctx, b)
        return ctx.out
    _rule_addresses(ctx)
    _rule_duplicate_blocks(ctx)
    for b in cf.blocks:
        _rule_block(ctx, b)
    _rule_shadow(ctx)
    for imp in cf.imports:
        if not imp.resolved:
            blk = next((b for b in cf.blocks if imp in b.imports), None)
            ctx.add("unresolved-import", Severity.INFO,
                    f"import {imp.pattern} is not a snippet defined before it: CoreDNS reads it as "
                    "a file glob, which this lint cannot see", block=blk, line=imp.line,
                    remedy=("give the coredns-custom ConfigMap too (kubectl get cm -n kube-system "
                            "coredns-custom -o yaml): its keys are the files this import reads"
                            if imp.pattern.endswith((".server", ".override")) else
                            "lint the imported files too, or define the snippet before the import"))
    pillars = sorted({m.group(0).upper() for m in PILLAR_RE.finditer(cf.text or "")})
    if pillars:
        ctx.add("pillar-placeholder", Severity.INFO,
                "NodeLocal DNSCache manifest placeholders: "
                + "; ".join(f"{p} ({pillar_note(p).split(': ', 1)[-1]})" for p in pillars),
                block=None, line=None,
                remedy="none needed for __PILLAR__CLUSTER__DNS__ and __PILLAR__UPSTREAM__SERVERS__ "
                       "(node-cache fills them at start); the others must be replaced when the "
                       "manifest is installed",
                placeholders=pillars)
    if cf.env_placeholders:
        ctx.add("env-placeholder", Severity.INFO,
                f"environment placeholders left unresolved: {', '.join(cf.env_placeholders)}",
                block=None, line=None,
                remedy="CoreDNS replaces them from its environment at start; check the pod spec")
    return ctx.out


def _rule_addresses(ctx: _Ctx) -> None:
    for b in ctx.cf.blocks:
        for a in b.addresses:
            if a.problem:
                ctx.add("address-problem", Severity.WARNING,
                        f"server block key {a.key!r}: {a.problem}", block=b, line=b.line,
                        remedy="write the key as [dns://|tls://]ZONE[:PORT]")


def _binds_overlap(a: ServerBlock, b: ServerBlock) -> bool:
    ba, bb = set(a.bind), set(b.bind)
    return not ba or not bb or bool(ba & bb)


def _rule_duplicate_blocks(ctx: _Ctx) -> None:
    by_label: dict[str, list[ServerBlock]] = {}
    for b in ctx.cf.blocks:
        for label in dict.fromkeys(a.label for a in b.addresses):
            by_label.setdefault(label, []).append(b)
    reported: set[tuple[int, int]] = set()
    for label, blocks in by_label.items():
        for i, b in enumerate(blocks):
            for prev in blocks[:i]:
                if not _binds_overlap(prev, b) or prev.has("view") or b.has("view"):
                    continue
                if (id(prev), id(b)) in reported:
                    continue
                reported.add((id(prev), id(b)))
                ctx.add("duplicate-server-block", Severity.CRITICAL,
                        f"{label} is served by two blocks (lines {prev.line} and {b.line}): "
                        "CoreDNS refuses to start", block=b, line=b.line,
                        evidence=[f"first defined at line {prev.line}"],
                        remedy="merge the two blocks, or give them different ports or bind addresses",
                        other_line=prev.line)


def _rule_plugins(ctx: _Ctx, b: ServerBlock) -> None:
    """Rules about single directives: unknown, removed, external plugins; repeated
    `fallthrough` lines."""
    for d in b.directives:
        name = d.name
        if not is_known(name):
            if name in REMOVED:
                ctx.add("removed-plugin", Severity.WARNING,
                        f"'{name}' is no longer a CoreDNS plugin", block=b, line=d.line,
                        remedy=f"use {REMOVED[name]}", plugin=name)
            else:
                guess = nearest(name)
                hint = f" (did you mean '{guess}'?)" if guess else ""
                ctx.add("unknown-plugin", Severity.WARNING,
                        f"unknown plugin '{name}' at {_where(d)}{hint}", block=b, line=d.line,
                        remedy=(f"rename it to '{guess}'" if guess else "remove it") +
                               "; CoreDNS refuses to start on an unknown directive",
                        plugin=name, nearest=guess)
        elif name in EXTERNAL:
            ctx.add("external-plugin", Severity.INFO,
                    f"'{name}' is an external plugin: it needs a custom CoreDNS build",
                    block=b, line=d.line, plugin=name)
        elif name in DISTRIBUTION and not (ctx.role and ctx.role.managed_by):
            ctx.add("distribution-plugin", Severity.INFO,
                    f"'{name}' is a plugin of {DISTRIBUTION[name]}: upstream CoreDNS refuses it",
                    block=b, line=d.line, plugin=name)
        falls = d.sub("fallthrough")
        if len(falls) > 1:
            kept = " ".join(falls[-1].args) or "every zone"
            ctx.add("duplicate-fallthrough", Severity.WARNING,
                    f"'{name}' at {_where(d)} has {len(falls)} fallthrough lines (lines "
                    f"{', '.join(str(f.line) for f in falls)}): CoreDNS keeps only the last one "
                    f"(fallthrough {kept})",
                    block=b, line=falls[-1].line,
                    evidence=[f"line {f.line}: fallthrough {' '.join(f.args)}".rstrip()
                              for f in falls],
                    remedy="merge them into one line listing every zone, e.g. 'fallthrough "
                           + " ".join(dict.fromkeys(z for f in falls for z in f.args)) + "'",
                    plugin=name, lines=[f.line for f in falls], kept=list(falls[-1].args))


def _rule_block(ctx: _Ctx, b: ServerBlock) -> None:
    _rule_plugins(ctx, b)
    seen: dict[str, Directive] = {}
    for d in b.directives:
        name = d.name
        if name in seen and name not in REPEATABLE:
            first = seen[name]
            ctx.add("duplicate-plugin", Severity.WARNING,
                    f"'{name}' is given twice in block {b.label} ({_where(first)} and {_where(d)})",
                    block=b, line=d.line, evidence=[f"first at {_where(first)}"],
                    remedy=f"delete the second '{name}' (line {d.line}); a plugin runs once per "
                           "block, a repeat is at best ignored and at worst refused",
                    plugin=name, first_line=first.line)
        seen.setdefault(name, d)
    chaos = _chaos_only(b)
    forwards = [d for d in b.directives if d.name in FORWARDERS]
    answers = [d for d in b.directives if d.name in ANSWERERS]
    if forwards and not b.has("cache"):
        ctx.add("missing-cache", Severity.WARNING,
                f"block {b.label} forwards without 'cache': every query goes upstream",
                block=b, line=b.line, remedy="add 'cache 30' to the block")
    elif not b.has("cache") and answers and not chaos:
        ctx.add("missing-cache", Severity.INFO, f"block {b.label} has no 'cache'", block=b,
                line=b.line, remedy="add 'cache 30' unless the data must never be cached")
    if forwards and not b.has("loop"):
        ctx.add("missing-loop", Severity.WARNING,
                f"block {b.label} forwards without 'loop': a forwarding loop would go unnoticed "
                "and burn CPU and memory", block=b, line=b.line, remedy="add 'loop' to the block")
    if not b.has("errors") and b.directives and not chaos:
        ctx.add("missing-errors", Severity.WARNING,
                f"block {b.label} has no 'errors': SERVFAILs and upstream failures are not logged",
                block=b, line=b.line, remedy="add 'errors' to the block")
    for d in b.get("forward"):
        spec = forward_spec(d)
        files = [t for t in spec.targets if t.kind == "file"]
        if files:
            has_loop = b.has("loop")
            ctx.add("forward-resolv-conf", Severity.INFO if has_loop else Severity.WARNING,
                    f"'forward {spec.from_zone} {files[0].raw}' at {_where(d)} sends queries to the "
                    "resolver of the node: if that is a local stub (systemd-resolved 127.0.0.53, "
                    "dnsmasq, NodeLocal) the queries can loop back"
                    + ("; 'loop' in the block would stop CoreDNS on a loop" if has_loop else ""),
                    block=b, line=d.line,
                    remedy="forward to explicit upstream addresses, or point kubelet's resolvConf "
                           "at a file listing the real upstream (e.g. /run/systemd/resolve/resolv.conf)",
                    plugin="forward")
        if spec.force_tcp and spec.prefer_udp:
            ctx.add("force-tcp-prefer-udp", Severity.WARNING,
                    f"forward at {_where(d)} sets both force_tcp and prefer_udp: they contradict "
                    "each other (CoreDNS may refuse the config)", block=b, line=d.line,
                    remedy="keep one: force_tcp (NodeLocal's choice, avoids UDP conntrack races) or "
                           "prefer_udp", plugin="forward")
        _rule_forward_zone(ctx, b, d, spec)
        for t in spec.targets:
            if t.kind in ("not-an-address", "placeholder") and not PILLAR_RE.fullmatch(t.raw):
                ctx.add("forward-target-not-address", Severity.INFO,
                        f"forward target {t.raw!r} at {_where(d)}: {t.note}", block=b, line=d.line,
                        plugin="forward", target=t.raw)
    _rule_order(ctx, b)


def _rule_forward_zone(ctx: _Ctx, b: ServerBlock, d: Directive, spec) -> None:
    """`forward FROM` only takes names under FROM (plugin/forward: anything else goes to the
    next plugin); the block only gets names under its zones. No overlap: it never forwards."""
    frm = spec.from_zone
    if frm == "." or PILLAR_RE.search(frm):
        return
    zones = [z for z in b.zones if not PILLAR_RE.search(z)]
    if not zones or any(in_zone(frm, z) or in_zone(z, frm) for z in zones):
        return
    ctx.add("forward-zone-unreachable", Severity.WARNING,
            f"'{d.name} {frm} ...' at {_where(d)} only forwards names under {frm}, but block "
            f"{b.label} only receives names under {', '.join(zones)}: it never forwards anything",
            block=b, line=d.line,
            remedy=f"write 'forward . ...' to forward the block's zone, or move the forward into a "
                   f"block for {frm}",
            plugin=d.name, from_zone=frm, zones=zones)


def _from_file(d: Directive) -> bool:
    return bool(d.imported_from) and (":" in d.imported_from or "/" in d.imported_from)


def _rule_order(ctx: _Ctx, b: ServerBlock) -> None:
    pairs: list[tuple[Directive, Directive]] = []
    for i, ans in enumerate(b.directives):
        oi = order_index(ans.name)
        if ans.name not in ANSWERERS or oi is None:
            continue
        for later in b.directives[i + 1:]:
            if _from_file(later) or _from_file(ans):
                continue  # spliced in from a custom file: its position is the import's
            ol = order_index(later.name)
            if later.name in _QUERY_TOUCHING and ol is not None and ol < oi:
                pairs.append((ans, later))
    if not pairs:
        return
    ev = [f"'{late.name}' (line {late.line}) is written after '{ans.name}' (line {ans.line}) but "
          f"runs before it" for ans, late in pairs]
    ctx.add("plugin-order", Severity.INFO,
            f"block {b.label}: file order is not execution order: "
            + ", ".join(f"{late.name} runs before {ans.name}" for ans, late in pairs),
            block=b, line=pairs[0][1].line, evidence=ev,
            remedy="CoreDNS runs plugins in its plugin.cfg order whatever the Corefile says; "
                   "reorder the lines to match so the file reads the way queries flow",
            pairs=[[ans.name, late.name] for ans, late in pairs])


def _parents(zone: str):
    """Strictly wider zones of ZONE, most specific first, ending with the root."""
    labels = zone.rstrip(".").split(".")
    for i in range(1, len(labels)):
        yield ".".join(labels[i:]) + "."
    yield "."


def _rule_shadow(ctx: _Ctx) -> None:
    blocks = ctx.cf.blocks
    index: dict[tuple[str, int | None, str], list[ServerBlock]] = {}
    for o in blocks:
        for oa in o.addresses:
            index.setdefault((oa.transport, oa.port, oa.zone), []).append(o)
    defaults: dict[int | None, object] = {}
    for b in blocks:
        for a in b.addresses:
            if a.zone == ".":
                continue
            wider = None
            for pz in _parents(a.zone):
                for o in index.get((a.transport, a.port, pz), ()):
                    if o is not b and _binds_overlap(o, b):
                        wider = (o, next(x for x in o.addresses if x.zone == pz))
                        break
                if wider:
                    break
            if wider is None or _chaos_only(b):
                continue
            o, oa = wider
            own_fwd = [d for d in b.directives if d.name in FORWARDERS]
            only_forward = own_fwd and not [d for d in b.directives
                                            if d.name in ANSWERERS and d.name not in FORWARDERS]
            if oa.zone == ".":
                if a.port not in defaults:
                    defaults[a.port] = default_forward(ctx.cf, a.port)
                default = defaults[a.port]
            else:
                default = None
            if default is None:
                default = next((forward_spec(d) for d in o.directives if d.name in FORWARDERS), None)
            if only_forward:
                spec = forward_spec(own_fwd[0])
                differs = default is None or {t.raw for t in spec.targets} != \
                    {t.raw for t in default.targets}
                if differs and _cluster_forward(ctx.role, spec):
                    # A node cache sending a cluster zone to the cluster DNS Service: NodeLocal
                    # DNSCache's design (cluster/addons/dns/nodelocaldns/nodelocaldns.yaml and
                    # kubespray nodelocaldns-config.yml.j2 forward the cluster domain and the
                    # reverse zones to __PILLAR__CLUSTER__DNS__ / the CoreDNS Service).
                    continue
                if differs:
                    targets = ", ".join(t.raw for t in spec.targets) or "(none)"
                    dflt = ", ".join(t.raw for t in default.targets) if default else "none"
                    ctx.add("stub-forward", Severity.WARNING,
                            f"block {b.label} (line {b.line}) sends every name under {a.zone} to "
                            f"{targets} instead of the default upstream ({dflt}) of block "
                            f"{o.label}: the more specific block always wins",
                            block=b, line=b.line,
                            evidence=[f"forward at line {own_fwd[0].line}: {targets}",
                                      f"default upstream: block {o.label} line {o.line}: {dflt}"],
                            remedy=f"if {targets} is not the authoritative or intended server for "
                                   f"{a.zone}, re-point or delete this block, then flush the DNS "
                                   "caches (restart NodeLocal/CoreDNS or wait out the cache TTL); "
                                   "check it answers like the default upstream with "
                                   "`podtriage corefile check`",
                            zone=a.zone, targets=[t.raw for t in spec.targets],
                            default_targets=[t.raw for t in default.targets] if default else [],
                            shadowed_block=list(o.zones), shadowed_line=o.line)
                continue
            k8s_zones = [z for d in o.get("kubernetes") for z in (list(d.args) or list(o.zones))]
            steals = [z for z in k8s_zones if in_zone(a.zone, z)] and not b.has("kubernetes")
            if steals or not own_fwd or (default and own_fwd and {t.raw for t in
                                         forward_spec(own_fwd[0]).targets} !=
                                         {t.raw for t in default.targets}):
                ctx.add("zone-shadow", Severity.WARNING if steals else Severity.INFO,
                        f"block {b.label} (line {b.line}) takes {a.zone} from block {o.label} "
                        f"(line {o.line})" + (": those names never reach its kubernetes plugin"
                                              if steals else ""),
                        block=b, line=b.line,
                        remedy="make sure the narrower block is meant to answer that zone",
                        zone=a.zone, shadowed_block=list(o.zones), shadowed_line=o.line)


def _cluster_forward(role: RoleAssignment | None, spec) -> bool:
    if role is None or role.role not in (CorefileRole.NODE_CACHE,
                                         CorefileRole.NODE_CACHE_SECONDARY):
        return False
    raws = {t.raw for t in spec.targets}
    return bool(raws) and raws <= set(role.cluster_dns_targets) | CLUSTER_DNS_PILLARS


def lint(corefiles: Sequence[Corefile], *, assembly: Assembly | None = None) -> LintResult:
    """Lint the Corefiles as CoreDNS runs them (see roles.assemble)."""
    if assembly is None:
        assembly = assemble(corefiles)
    findings: list[Finding] = []
    blocks: list[BlockSummary] = []
    files: list[FileSummary] = []
    for cf in assembly.corefiles:
        r = assembly.role_of(cf)
        files.append(FileSummary(cf.name, cf.source, cf.configmap, cf.key, cf.line_offset,
                                 len(cf.blocks), cf.snippets, r.role.value if r else None,
                                 r.source.value if r else None, r.evidence if r else (),
                                 None, r.managed_by if r else None, cf.imported_files))
        if not cf.fragment:
            for b in cf.blocks:
                blocks.append(BlockSummary(cf.name, b.keys, b.zones, b.ports, b.line,
                                           None if b.imported_from else cf.file_line(b.line),
                                           b.plugins, b.bind))
        findings.extend(lint_corefile(cf, r))
    given = {f.corefile for f in files}
    orig = {c.name: c for c in corefiles}
    for r in assembly.roles:
        if r.corefile not in given:  # custom import files, linted where they are spliced in
            c = orig.get(r.corefile)
            files.append(FileSummary(r.corefile, c.source if c else "", c.configmap if c else None,
                                     c.key if c else None, c.line_offset if c else None, 0, (),
                                     r.role.value, r.source.value, r.evidence, r.imported_by,
                                     r.managed_by))
    order = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}
    findings.sort(key=lambda f: order[f.severity])
    return LintResult(tuple(files), tuple(blocks), tuple(findings), assembly)


def lint_report(result: LintResult, subject: str = "") -> Report:
    verdict = Verdict.DNS_ERROR if result.problem else Verdict.OK
    rows = tuple((b.corefile, " ".join(b.keys), str(b.line) + (f" ({b.file_line})" if b.file_line
                                                                 and b.file_line != b.line else ""),
                  " ".join(b.plugins)) for b in result.blocks)
    table = Table("Server blocks", ("corefile", "block", "line (file line)", "plugins"), rows)
    counts = {s: sum(1 for f in result.findings if f.severity is s) for s in Severity}
    notes = (f"{len(result.blocks)} server block(s) in {len(result.files)} Corefile(s); "
             f"{counts[Severity.CRITICAL]} critical, {counts[Severity.WARNING]} warning, "
             f"{counts[Severity.INFO]} info",)
    return Report(
        command="corefile lint",
        verdict=verdict,
        findings=result.findings,
        data={"files": result.files,
              "corefiles": role_json(result.assembly) if result.assembly else [],
              "blocks": [{"corefile": b.corefile, "zones": b.zones, "ports": b.ports,
                          "keys": b.keys, "line": b.line, "file_line": b.file_line,
                          "plugins": b.plugins, "bind": b.bind} for b in result.blocks]},
        tables=(table,) + ((Table("Corefiles (what each was taken for)",
                                   ("corefile", "role", "from", "why"),
                                   role_rows(result.assembly)),) if result.assembly else ()),
        subject=subject,
        notes=notes,
    )
