"""Corefile lint: walk each Corefile and ask the rules of toolkit.corefile.lint_rules about
what they look at. Each finding names the Corefile, the block (zones) and the line (in the
Corefile and, when it maps, in the file it came from).

Rules (codes are stable):
- ``duplicate-server-block`` (critical): two blocks serve the same transport+zone+port on
  overlapping ``bind`` addresses: CoreDNS refuses to start. One finding per key, however many
  blocks repeat it (``count``, the first ``examples``): output grows with the file.
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
- ``distribution-plugin`` (critical): a plugin of a distribution's CoreDNS build
  (``ocp_dnsnameresolver``): upstream CoreDNS refuses to load the Corefile (Unknown
  directive); it needs that distribution's build (which its operator runs for the Corefiles
  it generates).

Context from roles.assemble: a node cache's blocks that send the cluster zones to the cluster
DNS are not stub forwards (NodeLocal DNSCache's design); custom import files are linted where
they are spliced in; a Corefile an operator generates (OpenShift's dns-default) gets its
best-practice findings as info, since the operator reconciles edits away; a chaos-only block
(``hostname.bind { chaos }``) needs neither ``errors`` nor ``cache``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from toolkit.corefile.document import Corefile, ServerBlock
from toolkit.corefile.plugins.base import CURRENT, Semantics
from toolkit.corefile.lint_rules import (
    ADDRESS_RULES,
    BLOCK_RULES,
    DIRECTIVE_RULES,
    FILE_RULES,
    FORWARD_RULES,
    IMPORT_RULES,
    ORDER_RULES,
    PAIR_RULES,
    REPEAT_RULES,
    SHADOW_RULES,
    TARGET_RULES,
    ask,
)
from toolkit.corefile.lint_subjects import (
    CorefileFacts,
    DirectiveFacts,
    addresses,
    block_facts,
    forwards,
    imports,
    same_key_blocks,
    shadows,
    targets,
)
from toolkit.corefile.roles import (
    Assembly,
    CorefileRole,
    RoleAssignment,
    RoleSource,
    assemble,
    role_json,
    role_rows,
)
from toolkit.model import Finding, Report, Severity, Table, Verdict


@dataclass(frozen=True, kw_only=True)
class BlockSummary:
    """One server block as the lint report lists it."""

    corefile: str
    keys: tuple[str, ...]
    zones: tuple[str, ...]
    ports: tuple[int, ...]
    line: int
    file_line: int | None
    plugins: tuple[str, ...]
    bind: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class FileSummary:
    """One given Corefile as the lint report lists it: where it came from and what it was
    taken for."""

    corefile: str
    source: str
    configmap: str | None
    key: str | None
    line_offset: int | None
    blocks: int
    snippets: tuple[str, ...]
    role: CorefileRole | None = None
    role_source: RoleSource | None = None
    role_evidence: tuple[str, ...] = ()
    imported_by: str | None = None
    managed_by: str | None = None
    imported_files: tuple[str, ...] = ()


@dataclass(frozen=True)
class LintResult:
    """The Corefiles linted and the findings, most severe first."""

    files: tuple[FileSummary, ...]
    blocks: tuple[BlockSummary, ...]
    findings: tuple[Finding, ...]
    assembly: Assembly | None = None

    @property
    def problem(self) -> bool:
        """Whether anything above info was found."""
        return any(f.severity is not Severity.INFO for f in self.findings)

    @property
    def refused(self) -> bool:
        """Whether a critical finding was made: CoreDNS refuses the config, or it fails
        names it must answer."""
        return any(f.severity is Severity.CRITICAL for f in self.findings)


def _lint_block(f: CorefileFacts, b: ServerBlock) -> list[Finding]:
    """A block's findings: its directives' (each in turn), then repeated plugins, the
    block's, its forwards' (each with its targets), and plugin order."""
    bf = block_facts(f, b)
    directives = [DirectiveFacts(f, bf, d) for d in b.directives]
    out: list[Finding] = []
    ask(out, DIRECTIVE_RULES, directives)
    ask(out, REPEAT_RULES, directives)
    ask(out, BLOCK_RULES, (bf,))
    for fw in forwards(bf):
        ask(out, FORWARD_RULES, (fw,))
        ask(out, TARGET_RULES, targets(fw))
    ask(out, ORDER_RULES, (bf,))
    return out


def lint_corefile(cf: Corefile, role: RoleAssignment | None = None,
                  semantics: Semantics = CURRENT) -> list[Finding]:
    """The findings of one Corefile, in document order: its keys, blocks that share a key,
    each block, narrower blocks, imports, then the whole file's placeholders."""
    f = CorefileFacts(cf, role, semantics)
    if cf.fragment:
        # A *.override file nobody imports here: only its directives can be checked.
        fragment: list[Finding] = []
        for b in cf.blocks:
            bf = block_facts(f, b)
            ask(fragment, DIRECTIVE_RULES, [DirectiveFacts(f, bf, d) for d in b.directives])
        return fragment
    out: list[Finding] = []
    ask(out, ADDRESS_RULES, addresses(f))
    ask(out, PAIR_RULES, same_key_blocks(f))
    for b in cf.blocks:
        out.extend(_lint_block(f, b))
    ask(out, SHADOW_RULES, shadows(f))
    ask(out, IMPORT_RULES, imports(f))
    ask(out, FILE_RULES, (f,))
    return out


def duplicate_blocks(assembly: Assembly, semantics: Semantics = CURRENT) -> list[Finding]:
    """Only the ``duplicate-server-block`` findings (one per key, linear in the blocks): what
    ``corefile trace`` and ``check`` add to their own findings, since a path through a
    Corefile CoreDNS refuses to load is a prediction about a server that does not start."""
    out: list[Finding] = []
    for cf in assembly.corefiles:
        if not cf.fragment:
            ask(out, PAIR_RULES, same_key_blocks(CorefileFacts(cf, assembly.role_of(cf), semantics)))
    return out


def with_refusals(report: Report, refusals: Sequence[Finding]) -> Report:
    """REPORT with REFUSALS first among its findings; an ``ok`` verdict becomes ``dns-error``
    (the Corefile does not load: lint's verdict for it)."""
    if not refusals:
        return report
    verdict = Verdict.DNS_ERROR if report.verdict is Verdict.OK else report.verdict
    return replace(report, verdict=verdict, findings=(*refusals, *report.findings))


def _file_summary(cf: Corefile, r: RoleAssignment | None) -> FileSummary:
    return FileSummary(corefile=cf.name, source=cf.source, configmap=cf.configmap, key=cf.key,
                       line_offset=cf.line_offset, blocks=len(cf.blocks), snippets=cf.snippets,
                       role=r.role if r else None, role_source=r.source if r else None,
                       role_evidence=r.evidence if r else (), imported_by=None,
                       managed_by=r.managed_by if r else None, imported_files=cf.imported_files)


def _consumed_summary(r: RoleAssignment, c: Corefile | None) -> FileSummary:
    """A custom import file, linted where it is spliced in."""
    return FileSummary(corefile=r.corefile, source=c.source if c else "",
                       configmap=c.configmap if c else None, key=c.key if c else None,
                       line_offset=c.line_offset if c else None, blocks=0, snippets=(),
                       role=r.role, role_source=r.source, role_evidence=r.evidence,
                       imported_by=r.imported_by, managed_by=r.managed_by)


def _block_summary(cf: Corefile, b: ServerBlock) -> BlockSummary:
    return BlockSummary(corefile=cf.name, keys=b.keys, zones=b.zones, ports=b.ports, line=b.line,
                        file_line=None if b.imported_from else cf.file_line(b.line),
                        plugins=b.plugins, bind=b.bind)


_SEVERITY_ORDER = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}


def lint(corefiles: Sequence[Corefile], *, assembly: Assembly | None = None,
         semantics: Semantics = CURRENT, node_cache: Semantics | None = None) -> LintResult:
    """Lint the Corefiles as CoreDNS runs them (see roles.assemble): SEMANTICS is the CoreDNS
    that runs them, NODE_CACHE the build that runs the node caches (default: SEMANTICS)."""
    if assembly is None:
        assembly = assemble(corefiles)
    findings: list[Finding] = []
    blocks: list[BlockSummary] = []
    files: list[FileSummary] = []
    for cf in assembly.corefiles:
        r = assembly.role_of(cf)
        files.append(_file_summary(cf, r))
        if not cf.fragment:
            blocks.extend(_block_summary(cf, b) for b in cf.blocks)
        cache = r is not None and r.role in (CorefileRole.NODE_CACHE,
                                             CorefileRole.NODE_CACHE_SECONDARY)
        sem = node_cache if cache and node_cache is not None else semantics
        findings.extend(lint_corefile(cf, r, sem))
    given = {f.corefile for f in files}
    orig = {c.name: c for c in corefiles}
    files.extend(_consumed_summary(r, orig.get(r.corefile)) for r in assembly.roles
                 if r.corefile not in given)
    findings.sort(key=lambda f: _SEVERITY_ORDER[f.severity])
    return LintResult(tuple(files), tuple(blocks), tuple(findings), assembly)


def lint_report(result: LintResult, subject: str = "") -> Report:
    """The Report of ``corefile lint``: ``dns-error`` when a finding is critical (CoreDNS
    refuses the config, or it fails names it must answer); warnings and info leave it ``ok``
    (a config that loads and answers is never an error because of advice)."""
    verdict = Verdict.DNS_ERROR if result.refused else Verdict.OK
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
