"""The Corefile lint rules: each a small function of one subject (toolkit.corefile.
lint_subjects) to a Finding or None, its texts written with it, collected by subject in the
tables at the end with a priority (the order a reader sees the findings about one subject:
higher first). toolkit.corefile.lint walks the Corefile and asks each table about each of
its subjects. Codes are stable; the module docstring of toolkit.corefile.lint lists them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from toolkit.corefile.document import Directive, ServerBlock
from toolkit.corefile.plugins.zones import zones_of
from toolkit.corefile.lint_subjects import (
    AddressFacts,
    BlockFacts,
    CorefileFacts,
    DirectiveFacts,
    ForwardFacts,
    ImportFacts,
    SameKeyBlocks,
    ShadowFacts,
    TargetFacts,
    chaos_only,
    from_file,
    where,
)
from toolkit.corefile.names import in_zone
from toolkit.corefile.loadcheck import coredns_refuses
from toolkit.corefile.plugins.catalog import (
    ANSWERERS,
    DISTRIBUTION,
    EXTERNAL,
    ONCE,
    REMOVED,
    REPEATABLE,
    is_known,
    nearest,
)
from toolkit.corefile.plugins.forward import TargetKind, to_cluster_dns
from toolkit.corefile.roles import OPENSHIFT_OPERATOR, PILLAR_RE, pillar_note
from toolkit.model import Finding, Severity

S = TypeVar("S")


@dataclass(frozen=True)
class LintRow(Generic[S]):
    """A rule about one kind of subject, with its priority among the rules of that subject."""

    priority: int
    rule: Callable[[S], Finding | None]


def table(*rows: LintRow[S]) -> tuple[LintRow[S], ...]:
    """Rows in the order they are asked: highest priority first."""
    return tuple(sorted(rows, key=lambda r: -r.priority))


def ask(out: list[Finding], rows: tuple[LintRow[S], ...], subjects: Iterable[S]) -> None:
    """Append the findings of ROWS about each of SUBJECTS in turn to OUT."""
    for s in subjects:
        for row in rows:
            f = row.rule(s)
            if f is not None:
                out.append(f)


# --- server block keys -----------------------------------------------------------------------


def address_problem(x: AddressFacts) -> Finding | None:
    """A key CoreDNS cannot read (bad port, unknown scheme)."""
    a, b = x.address, x.block
    if not a.problem:
        return None
    if a.refused:
        said = f"error inspecting server blocks: {a.refused}"
        return x.file.finding(
            "coredns-refuses", Severity.CRITICAL,
            f"{x.file.semantics.build.label} refuses to load this Corefile: server block key "
            f"{a.key!r}: {a.refused}", block=b, line=b.line, evidence=[f"CoreDNS says: {said}"],
            remedy="write the key as [dns://|tls://]ZONE[:PORT]", coredns_error=said)
    return x.file.finding("address-problem", Severity.WARNING,
                          f"server block key {a.key!r}: {a.problem}", block=b, line=b.line,
                          remedy="write the key as [dns://|tls://]ZONE[:PORT]")


EXAMPLES = 10  # the clashes a repeated finding names one by one; the rest are counted


def duplicate_server_block(x: SameKeyBlocks) -> Finding | None:
    """Blocks for the same key on overlapping addresses (not views): CoreDNS refuses to
    start. One finding per key with the count and the first clashes (issue 23, class 4)."""
    if not x.clashes:
        return None
    prev, b = x.clashes[0]
    n = len(x.clashes)
    ids = {id(blk) for pair in x.clashes for blk in pair}
    shown = x.clashes[:EXAMPLES]
    if n == 1:
        what = f"two blocks (lines {prev.line} and {b.line})"
    else:
        lines = ", ".join(str(c.line) for _, c in shown)
        more = f" and {n - len(shown)} more" if n > len(shown) else ""
        what = (f"{len(ids)} blocks (line {prev.line}, repeated at lines {lines}{more})")
    evidence = [f"first defined at line {prev.line}"]
    evidence += [f"line {c.line} repeats the key of line {o.line}" for o, c in shown[1:]]
    if n > len(shown):
        evidence.append(f"... and {n - len(shown)} more blocks repeating it")
    return x.file.finding(
        "duplicate-server-block", Severity.CRITICAL,
        f"{x.label} is served by {what}: CoreDNS refuses to start", block=b, line=b.line,
        evidence=evidence,
        remedy="merge the blocks, or give them different ports or bind addresses",
        other_line=prev.line, count=n, blocks_involved=len(ids),
        examples=[{"line": c.line, "other_line": o.line} for o, c in shown])


# --- directives ------------------------------------------------------------------------------


def _not_in_build(x: DirectiveFacts) -> bool:
    """Whether the directive's plugin is missing from the CoreDNS build that runs it."""
    return x.directive.name not in x.file.semantics.build.compiled


def _refused(x: DirectiveFacts) -> str:
    """What CoreDNS says about a plugin its build lacks (caddy: a name outside plugin.cfg is
    an unknown directive; a listed one not compiled in has no setup action)."""
    d, b = x.directive, x.file.semantics.build
    if b.index(d.name) is None:
        return f"Corefile:{d.line} - Error during parsing: Unknown directive '{d.name}'"
    return f"No action found for directive '{d.name}' with server type 'dns' (missing a plugin?)"


def removed_plugin(x: DirectiveFacts) -> Finding | None:
    """A plugin CoreDNS had once (proxy & co): the CoreDNS that runs it refuses to start."""
    d = x.directive
    if d.name not in REMOVED or is_known(d.name) or not _not_in_build(x):
        return None
    label = x.file.semantics.build.label
    return x.file.finding("removed-plugin", Severity.CRITICAL,
                          f"'{d.name}' is no longer a CoreDNS plugin: {label} refuses to start",
                          block=x.block.block, line=d.line, remedy=f"use {REMOVED[d.name]}",
                          plugin=d.name, evidence=[f"CoreDNS says: {_refused(x)}"],
                          coredns_error=_refused(x))


def unknown_plugin(x: DirectiveFacts) -> Finding | None:
    """A plugin the CoreDNS build that runs the Corefile does not have (not external, not a
    distribution's, not removed): CoreDNS refuses to start; the nearest known name."""
    d = x.directive
    if not _not_in_build(x) or d.name in REMOVED or d.name in EXTERNAL or d.name in DISTRIBUTION:
        return None
    label = x.file.semantics.build.label
    guess = None if is_known(d.name) else nearest(d.name)
    if is_known(d.name):
        what = f"'{d.name}' is not in {label}"
    else:
        what = f"unknown plugin '{d.name}'" + (f" (did you mean '{guess}'?)" if guess else "")
    return x.file.finding("unknown-plugin", Severity.CRITICAL,
                          f"{what} at {where(d)}: {label} refuses to start", block=x.block.block,
                          line=d.line, evidence=[f"CoreDNS says: {_refused(x)}"],
                          remedy="fix the plugin name, or run a CoreDNS build that has it",
                          plugin=d.name, nearest=guess, coredns_error=_refused(x))


def external_plugin(x: DirectiveFacts) -> Finding | None:
    """A widely used plugin that is not in the default build."""
    d = x.directive
    if d.name not in EXTERNAL or not is_known(d.name):
        return None
    return x.file.finding("external-plugin", Severity.INFO,
                          f"'{d.name}' is an external plugin: it needs a custom CoreDNS build",
                          block=x.block.block, line=d.line, plugin=d.name)


# Who deploys each distribution plugin's CoreDNS build: a Corefile it generates runs there.
_BUILT_BY = {"ocp_dnsnameresolver": OPENSHIFT_OPERATOR}


def distribution_plugin(x: DirectiveFacts) -> Finding | None:
    """A plugin of a distribution's own CoreDNS build (OpenShift's ``ocp_dnsnameresolver``):
    the upstream CoreDNS build lint checks against refuses to load the Corefile (caddy's
    parser: "Unknown directive", coredns/caddy caddyfile/parse.go directive()). Critical for
    a Corefile that may run on upstream CoreDNS; info for one its distribution's operator
    generates (it runs only on that build: OpenShift's dns-default), so linting a healthy
    OpenShift cluster's ConfigMap is not a `dns-error`."""
    d = x.directive
    if d.name not in DISTRIBUTION or not is_known(d.name) or d.name in EXTERNAL \
            or not _not_in_build(x):
        return None
    label, who = x.file.semantics.build.label, DISTRIBUTION[d.name]
    runs_there = x.file.managed_by is not None and x.file.managed_by == _BUILT_BY.get(d.name)
    managed = f" (this Corefile is generated by {x.file.managed_by}, which runs that build)" \
        if x.file.managed_by else ""
    summary = (f"'{d.name}' at {where(d)} is a plugin of {who}, which runs this Corefile{managed}; "
               f"upstream {label} would refuse it, and lint does not check the plugin itself") \
        if runs_there else (f"'{d.name}' at {where(d)} is a plugin of {who}: upstream {label} refuses "
                            f"to load this Corefile; it needs {who}{managed}")
    return x.file.finding(
        "distribution-plugin", Severity.INFO if runs_there else Severity.CRITICAL, summary,
        block=x.block.block, line=d.line, evidence=[f"upstream CoreDNS says: {_refused(x)}"],
        remedy="" if runs_there else f"run it on {who}, or remove '{d.name}' to run it on upstream CoreDNS",
        plugin=d.name, coredns_error=_refused(x))


def duplicate_fallthrough(x: DirectiveFacts) -> Finding | None:
    """Two ``fallthrough`` lines in one plugin block: CoreDNS keeps only the last
    (plugin/kubernetes/setup.go calls fall.F.SetZonesFromArgs per line)."""
    d = x.directive
    falls = d.sub("fallthrough")
    if len(falls) <= 1:
        return None
    kept = " ".join(falls[-1].args) or "every zone"
    return x.file.finding(
        "duplicate-fallthrough", Severity.WARNING,
        f"'{d.name}' at {where(d)} has {len(falls)} fallthrough lines (lines "
        f"{', '.join(str(f.line) for f in falls)}): CoreDNS keeps only the last one "
        f"(fallthrough {kept})",
        block=x.block.block, line=falls[-1].line,
        evidence=[f"line {f.line}: fallthrough {' '.join(f.args)}".rstrip() for f in falls],
        remedy="merge them into one line listing every zone, e.g. 'fallthrough "
               + " ".join(dict.fromkeys(z for f in falls for z in f.args)) + "'",
        plugin=d.name, lines=[f.line for f in falls], kept=list(falls[-1].args))


def duplicate_plugin(x: DirectiveFacts) -> Finding | None:
    """A plugin given twice in one block: critical for the plugins whose setup returns
    plugin.ErrOnce (CoreDNS refuses to start: the seed's double loop), a warning for the
    others that are not meant to repeat."""
    d = x.directive
    first = x.block.first_of[d.name]
    if first is d or d.name in REPEATABLE:
        return None
    b = x.block.block
    once = d.name in ONCE
    said = f"plugin/{d.name}: this plugin can only be used once per Server Block"
    return x.file.finding(
        "duplicate-plugin", Severity.CRITICAL if once else Severity.WARNING,
        f"'{d.name}' is given twice in block {b.label} ({where(first)} and {where(d)})"
        + (f": {x.file.semantics.build.label} refuses to start" if once else ""),
        block=b, line=d.line,
        evidence=[f"first at {where(first)}"] + ([f"CoreDNS says: {said}"] if once else []),
        remedy=f"delete the second '{d.name}' (line {d.line})"
               + ("" if once else "; a plugin runs once per block, a repeat is at best ignored"),
        plugin=d.name, first_line=first.line, **({"coredns_error": said} if once else {}))


# --- blocks ----------------------------------------------------------------------------------


def missing_cache(x: BlockFacts) -> Finding | None:
    """A block that forwards (warning) or answers (info) without ``cache``."""
    b = x.block
    if b.has("cache"):
        return None
    if x.forwards:
        return x.file.finding("missing-cache", Severity.WARNING,
                              f"block {b.label} forwards without 'cache': every query goes upstream",
                              block=b, line=b.line, remedy="add 'cache 30' to the block")
    if x.answers and not chaos_only(b):
        return x.file.finding("missing-cache", Severity.INFO, f"block {b.label} has no 'cache'",
                              block=b, line=b.line,
                              remedy="add 'cache 30' unless the data must never be cached")
    return None


def missing_loop(x: BlockFacts) -> Finding | None:
    """A block that forwards without loop detection."""
    b = x.block
    if not x.forwards or b.has("loop"):
        return None
    return x.file.finding(
        "missing-loop", Severity.WARNING,
        f"block {b.label} forwards without 'loop': a forwarding loop would go unnoticed "
        "and burn CPU and memory", block=b, line=b.line, remedy="add 'loop' to the block")


def missing_errors(x: BlockFacts) -> Finding | None:
    """A block without ``errors``: failures go unlogged."""
    b = x.block
    if b.has("errors") or not b.directives or chaos_only(b):
        return None
    return x.file.finding(
        "missing-errors", Severity.WARNING,
        f"block {b.label} has no 'errors': SERVFAILs and upstream failures are not logged",
        block=b, line=b.line, remedy="add 'errors' to the block")


def hosts_without_fallthrough(x: BlockFacts) -> Finding | None:
    """``hosts`` without ``fallthrough`` ahead of a plugin that answers the same zones: every
    A/AAAA name the hosts file does not list gets SERVFAIL (plugin/hosts/hosts.go: no SOA, so
    no NXDOMAIN), and the later plugins never see it (coredns/coredns#3276)."""
    b = x.block
    hosts = b.get("hosts")
    if not hosts or hosts[0].has("fallthrough"):
        return None
    h = hosts[0]
    zones = zones_of(h, b, 1)
    sem = x.file.semantics
    oh = sem.order("hosts")
    later = [d for d in b.directives if d.name in ANSWERERS and d.name != "hosts"
             and (sem.order(d.name) or 0) > (oh or 0)]
    hit = [d for d in later if any(in_zone(zz, z) or in_zone(z, zz)
                                   for z in zones for zz in _answer_zones(d, b))]
    if not hit:
        return None
    names = ", ".join(dict.fromkeys(f"{d.name} ({where(d)})" for d in hit))
    return x.file.finding(
        "hosts-without-fallthrough", Severity.CRITICAL,
        f"'hosts' at {where(h)} has no 'fallthrough': every name of {' '.join(zones)} its "
        f"file does not list gets SERVFAIL, and {names} never sees it",
        block=b, line=h.line,
        evidence=["plugin/hosts/hosts.go: no answer and no fallthrough returns SERVFAIL "
                  "(there is no SOA to say NXDOMAIN); only unknown PTRs pass on"],
        remedy=f"add 'fallthrough' to the hosts block at line {h.line}", plugin="hosts",
        shadowed=[d.name for d in hit])


def _answer_zones(d: Directive, b: ServerBlock) -> list[str]:
    """The zones an answering plugin serves (forward: its FROM zone)."""
    if d.name in ("forward", "grpc", "proxy"):
        return [d.args[0].lower().rstrip(".") + "." if d.args and d.args[0] != "." else "."]
    return zones_of(d, b, 1 if d.name in ("file", "hosts") else 2 if d.name == "template" else 0)


# Plugins whose effect on a query a reader may misjudge when they are written after an answering
# plugin: they run before it whatever the file says.
_QUERY_TOUCHING = frozenset({
    "cache", "rewrite", "acl", "any", "dns64", "autopath", "template", "hosts", "kubernetes",
    "file", "auto", "etcd", "k8s_external", "header", "minimal", "dnssec", "tsig", "local",
    "chaos",
})


@dataclass(frozen=True)
class _OrderPair:
    """An answering plugin and a query-touching plugin written after it that runs before
    it: the first lines of each, and how many (answerer, later) directive pairs repeat it."""

    answerer: Directive
    later: Directive
    count: int


def _order_pairs(directives: tuple[Directive, ...], order_index: Callable[[str], int | None]
                 ) -> list[_OrderPair]:
    """One _OrderPair per pair of plugin names, in the order they are met, in one pass: the
    answerers seen so far are kept by name (a few dozen plugins), so 3,000 forwards before
    3,000 rewrites are one pair counted 9,000,000 times, not 9,000,000 evidence lines."""
    seen: dict[str, tuple[Directive, int, int]] = {}  # answerer name -> (first, index, count)
    pairs: dict[tuple[str, str], _OrderPair] = {}
    for d in directives:
        if from_file(d):
            continue  # spliced in from a custom file: its position is the import's
        ol = order_index(d.name)
        if d.name in _QUERY_TOUCHING and ol is not None:
            for name, (ans, oi, n) in seen.items():
                if ol < oi:
                    key = (name, d.name)
                    old = pairs.get(key)
                    pairs[key] = _OrderPair(answerer=ans, later=old.later if old else d,
                                            count=(old.count if old else 0) + n)
        if d.name in ANSWERERS and ol is not None:
            first, _, n = seen.get(d.name, (d, ol, 0))
            seen[d.name] = (first, ol, n + 1)
    return list(pairs.values())


def plugin_order(x: BlockFacts) -> Finding | None:
    """File order that is not execution order (``cache`` after ``forward``): one finding per
    block, one line per pair of plugins (their first lines, and how often it repeats)
    (CoreDNS runs by plugin.cfg, not file order)."""
    b = x.block
    pairs = _order_pairs(b.directives, x.file.semantics.order)
    if not pairs:
        return None
    ev = [f"'{p.later.name}' (line {p.later.line}) is written after '{p.answerer.name}' (line "
          f"{p.answerer.line}) but runs before it"
          + (f" ({p.count} such pairs of lines)" if p.count > 1 else "") for p in pairs]
    return x.file.finding(
        "plugin-order", Severity.INFO,
        f"block {b.label}: file order is not execution order: "
        + ", ".join(f"{p.later.name} runs before {p.answerer.name}" for p in pairs),
        block=b, line=pairs[0].later.line, evidence=ev,
        remedy="CoreDNS runs plugins in its plugin.cfg order whatever the Corefile says; "
               "reorder the lines to match so the file reads the way queries flow",
        pairs=[[p.answerer.name, p.later.name] for p in pairs],
        pair_counts=[p.count for p in pairs])


# --- forwards --------------------------------------------------------------------------------


def forward_resolv_conf(x: ForwardFacts) -> Finding | None:
    """``forward . /etc/resolv.conf``: the node's resolver may be a local stub (a loop).
    Info when ``loop`` would stop CoreDNS on it."""
    files = [t for t in x.spec.targets if t.kind is TargetKind.FILE]
    if not files:
        return None
    b, d = x.block.block, x.directive
    has_loop = b.has("loop")
    return x.block.file.finding(
        "forward-resolv-conf", Severity.INFO if has_loop else Severity.WARNING,
        f"'forward {x.spec.from_zone} {files[0].raw}' at {where(d)} sends queries to the "
        "resolver of the node: if that is a local stub (systemd-resolved 127.0.0.53, "
        "dnsmasq, NodeLocal) the queries can loop back"
        + ("; 'loop' in the block would stop CoreDNS on a loop" if has_loop else ""),
        block=b, line=d.line,
        remedy="forward to explicit upstream addresses, or point kubelet's resolvConf "
               "at a file listing the real upstream (e.g. /run/systemd/resolve/resolv.conf)",
        plugin="forward")


def force_tcp_prefer_udp(x: ForwardFacts) -> Finding | None:
    """Both ``force_tcp`` and ``prefer_udp`` in one forward."""
    if not (x.spec.force_tcp and x.spec.prefer_udp):
        return None
    d = x.directive
    return x.block.file.finding(
        "force-tcp-prefer-udp", Severity.WARNING,
        f"forward at {where(d)} sets both force_tcp and prefer_udp: they contradict "
        "each other (CoreDNS may refuse the config)", block=x.block.block, line=d.line,
        remedy="keep one: force_tcp (NodeLocal's choice, avoids UDP conntrack races) or "
               "prefer_udp", plugin="forward")


def forward_zone_unreachable(x: ForwardFacts) -> Finding | None:
    """`forward FROM` only takes names under FROM (plugin/forward: anything else goes to the
    next plugin); the block only gets names under its zones. No overlap: it never forwards."""
    frm = x.spec.from_zone
    if frm == "." or PILLAR_RE.search(frm):
        return None
    b, d = x.block.block, x.directive
    zones = [z for z in b.zones if not PILLAR_RE.search(z)]
    if not zones or any(in_zone(frm, z) or in_zone(z, frm) for z in zones):
        return None
    return x.block.file.finding(
        "forward-zone-unreachable", Severity.WARNING,
        f"'{d.name} {frm} ...' at {where(d)} only forwards names under {frm}, but block "
        f"{b.label} only receives names under {', '.join(zones)}: it never forwards anything",
        block=b, line=d.line,
        remedy=f"write 'forward . ...' to forward the block's zone, or move the forward into a "
               f"block for {frm}",
        plugin=d.name, from_zone=frm, zones=zones)


def forward_target_not_address(x: TargetFacts) -> Finding | None:
    """An upstream that is not an address (a hostname, a masked value, an unknown
    placeholder; NodeLocal's own placeholders are left to ``pillar-placeholder``)."""
    t, fw = x.target, x.forward
    if t.kind not in (TargetKind.NOT_AN_ADDRESS, TargetKind.PLACEHOLDER) or PILLAR_RE.fullmatch(t.raw):
        return None
    return fw.block.file.finding(
        "forward-target-not-address", Severity.INFO,
        f"forward target {t.raw!r} at {where(fw.directive)}: {t.note}", block=fw.block.block,
        line=fw.directive.line, plugin="forward", target=t.raw)


# --- narrower blocks -------------------------------------------------------------------------


def stub_forward(x: ShadowFacts) -> Finding | None:
    """A block whose only job is to forward a zone that a wider block also covers, to
    upstreams other than that block's default: the more specific block wins, so that zone
    never sees the default upstream (the seed's root cause). Not for a node cache sending a
    cluster zone to the cluster DNS (NodeLocal DNSCache's design)."""
    if not x.only_forwards:
        return None
    fwd = x.own_forwards[0]
    spec, default = x.block_spec(), x.default
    if default is not None and spec.raw_targets == default.raw_targets:
        return None
    if to_cluster_dns(x.file.role, spec):
        return None
    b, o, a = x.block, x.wider, x.address
    shown = ", ".join(t.raw for t in spec.targets) or "(none)"
    dflt = ", ".join(t.raw for t in default.targets) if default else "none"
    return x.file.finding(
        "stub-forward", Severity.WARNING,
        f"block {b.label} (line {b.line}) sends every name under {a.zone} to "
        f"{shown} instead of the default upstream ({dflt}) of block "
        f"{o.label}: the more specific block always wins",
        block=b, line=b.line,
        evidence=[f"forward at line {fwd.line}: {shown}",
                  f"default upstream: block {o.label} line {o.line}: {dflt}"],
        remedy=f"if {shown} is not the authoritative or intended server for "
               f"{a.zone}, re-point or delete this block, then flush the DNS "
               "caches (restart NodeLocal/CoreDNS or wait out the cache TTL); "
               "check it answers like the default upstream with "
               "`podtriage corefile check`",
        zone=a.zone, targets=[t.raw for t in spec.targets],
        default_targets=[t.raw for t in default.targets] if default else [],
        shadowed_block=list(o.zones), shadowed_line=o.line)


def zone_shadow(x: ShadowFacts) -> Finding | None:
    """A block that is more than a forward takes part of another block's zone: info, a
    warning when it takes names from that block's ``kubernetes`` zone."""
    if x.only_forwards:
        return None
    b, o, a, default = x.block, x.wider, x.address, x.default
    k8s_zones = [z for d in o.get("kubernetes") for z in (list(d.args) or list(o.zones))]
    steals = any(in_zone(a.zone, z) for z in k8s_zones) and not b.has("kubernetes")
    other_upstream = bool(default and x.own_forwards
                          and x.block_spec().raw_targets != default.raw_targets)
    if not (steals or not x.own_forwards or other_upstream):
        return None
    return x.file.finding(
        "zone-shadow", Severity.WARNING if steals else Severity.INFO,
        f"block {b.label} (line {b.line}) takes {a.zone} from block {o.label} "
        f"(line {o.line})" + (": those names never reach its kubernetes plugin"
                              if steals else ""),
        block=b, line=b.line, remedy="make sure the narrower block is meant to answer that zone",
        zone=a.zone, shadowed_block=list(o.zones), shadowed_line=o.line)


# --- the Corefile ----------------------------------------------------------------------------


def unresolved_import(x: ImportFacts) -> Finding | None:
    """An import of something that is not a snippet defined before it: a file glob this lint
    cannot read."""
    imp, cf = x.imp, x.file.cf
    if imp.resolved:
        return None
    blk = next((b for b in cf.blocks if imp in b.imports), None)
    return x.file.finding(
        "unresolved-import", Severity.INFO,
        f"import {imp.pattern} is not a snippet defined before it: CoreDNS reads it as "
        "a file glob, which this lint cannot see", block=blk, line=imp.line,
        remedy=("give the coredns-custom ConfigMap too (kubectl get cm -n kube-system "
                "coredns-custom -o yaml): its keys are the files this import reads"
                if imp.pattern.endswith((".server", ".override")) else
                "lint the imported files too, or define the snippet before the import"))


def pillar_placeholder(x: CorefileFacts) -> Finding | None:
    """The __PILLAR__*__ placeholders of the NodeLocal DNSCache manifest, with what fills
    them."""
    pillars = sorted({m.group(0).upper() for m in PILLAR_RE.finditer(x.cf.text or "")})
    if not pillars:
        return None
    return x.finding(
        "pillar-placeholder", Severity.INFO,
        "NodeLocal DNSCache manifest placeholders: "
        + "; ".join(f"{p} ({(pillar_note(p) or '').split(': ', 1)[-1]})" for p in pillars),
        block=None, line=None,
        remedy="none needed for __PILLAR__CLUSTER__DNS__ and __PILLAR__UPSTREAM__SERVERS__ "
               "(node-cache fills them at start); the others must be replaced when the "
               "manifest is installed",
        placeholders=pillars)


def env_placeholder(x: CorefileFacts) -> Finding | None:
    """{$VAR} placeholders no --env filled: CoreDNS fills them from its environment."""
    if not x.cf.env_placeholders:
        return None
    return x.finding(
        "env-placeholder", Severity.INFO,
        f"environment placeholders left unresolved: {', '.join(x.cf.env_placeholders)}",
        block=None, line=None,
        remedy="CoreDNS replaces them from its environment at start; check the pod spec")


# --- the tables, by subject ------------------------------------------------------------------

ADDRESS_RULES = table(LintRow(10, address_problem))
PAIR_RULES = table(LintRow(10, duplicate_server_block))
# The plugin-name rules exclude each other: a directive gets at most one of them.
DIRECTIVE_RULES = table(
    LintRow(50, removed_plugin),
    LintRow(49, unknown_plugin),
    LintRow(48, external_plugin),
    LintRow(47, distribution_plugin),
    LintRow(45, coredns_refuses),
    LintRow(40, duplicate_fallthrough),
)
REPEAT_RULES = table(LintRow(10, duplicate_plugin))
BLOCK_RULES = table(
    LintRow(40, hosts_without_fallthrough),
    LintRow(30, missing_cache),
    LintRow(20, missing_loop),
    LintRow(10, missing_errors),
)
FORWARD_RULES = table(
    LintRow(30, forward_resolv_conf),
    LintRow(20, force_tcp_prefer_udp),
    LintRow(10, forward_zone_unreachable),
)
TARGET_RULES = table(LintRow(10, forward_target_not_address))
ORDER_RULES = table(LintRow(10, plugin_order))
# stub_forward and zone_shadow exclude each other (only_forwards decides).
SHADOW_RULES = table(LintRow(20, stub_forward), LintRow(10, zone_shadow))
IMPORT_RULES = table(LintRow(10, unresolved_import))
FILE_RULES = table(LintRow(20, pillar_placeholder), LintRow(10, env_placeholder))
