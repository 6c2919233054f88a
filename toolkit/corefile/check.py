"""`corefile check`: ask every forward target of the Corefiles what it knows, and compare.

Each IP target of a `forward`/`grpc` directive gets the SOA of the zone it is forwarded
(over UDP and TCP) and each --name, and the answers are compared with those of the config's
default upstream (the `.` block's forward). The classification per target:

- unreachable: no answer at all (timeout, ICMP host/net unreachable);
- refusing: ICMP port-unreachable, TCP RST, or rcode REFUSED;
- lame: it answers, but not for its zone (no SOA, SERVFAIL, NXDOMAIN for the zone apex);
- slow: it answers after more than SLOW_MS;
- differs: its SOA serial or its answers for --name differ from the default upstream's. A
  stub block whose target differs from the default upstream is the seed incident's root
  cause: a forgotten block forwarding a zone to a retired server.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from enum import StrEnum

from toolkit.corefile.document import Corefile
from toolkit.corefile.listeners import listen_map
from toolkit.corefile.names import fqdn, in_zone
from toolkit.corefile.plugins.forward import Target, TargetKind, default_forward, forward_spec, is_stub
from toolkit.corefile.roles import Assembly, role_json, role_rows
from toolkit.deadline import Deadline
from toolkit.dns.query import QueryError, QueryResult, query
from toolkit.dns.transport import Transport
from toolkit.model import Finding, Report, Severity, Table, Verdict, derive_verdict

SLOW_MS = 500.0
MAX_TARGETS = 32


class CheckStatus(StrEnum):
    """What a forward target turned out to be (see the module docstring)."""

    OK = "ok"
    UNREACHABLE = "unreachable"
    REFUSING = "refusing"
    LAME = "lame"
    SERVFAIL = "servfail"
    UNCHECKED = "unchecked"  # not asked before the deadline: nothing observed
    SLOW = "slow"
    DIFFERS = "differs"


# Statuses whose answers can be compared with the default upstream's.
_COMPARABLE = frozenset({CheckStatus.OK, CheckStatus.SLOW})
_SERVER_DOWN = frozenset({QueryError.PORT_UNREACHABLE, QueryError.REFUSED, QueryError.RESET})


@dataclass(frozen=True, kw_only=True)
class Upstream:
    """One IP forward target of one block, with the zone it is sent."""

    corefile: str
    block: str
    line: int
    file_line: int | None
    zone: str
    target: str  # address
    port: int
    stub: bool  # a non-root block forwarding somewhere else than the default upstream


@dataclass(frozen=True, kw_only=True)
class TargetCheck:
    """What one upstream answered (its zone's SOA over UDP and TCP, the names), and what
    that makes it."""

    upstream: Upstream
    soa: tuple[QueryResult, ...]  # udp, tcp
    names: tuple[QueryResult, ...] = ()
    status: CheckStatus = CheckStatus.OK
    detail: str = ""
    compared_with: str | None = None  # the default upstream it was compared with
    differences: tuple[str, ...] = field(default=())

    __json_properties__ = ("serial",)

    @property
    def serial(self) -> int | None:
        """The serial of the first SOA it gave (None: none given)."""
        for q in self.soa:
            if q.rcode == "NOERROR" and q.answers:
                try:
                    return int(q.answers[0].split()[2])
                except (IndexError, ValueError):
                    return None
        return None


def _is_stub_upstream(cf: Corefile, b_ports: tuple[int, ...], zone: str, raws: frozenset[str]) -> bool:
    default = default_forward(cf, next(iter(b_ports), 53) if b_ports else 53)
    default_set = default.raw_targets if default else frozenset()
    return fqdn(zone) != "." and raws != default_set and bool(default_set)


def upstreams(corefiles: Sequence[Corefile], assembly: Assembly | None = None
              ) -> tuple[list[Upstream], list[str]]:
    """Every IP forward target, with the zone it serves; and notes on the ones skipped. With
    ASSEMBLY, a node cache's forwards of the cluster zones to the cluster DNS are no stubs."""
    out: list[Upstream] = []
    notes: list[str] = []
    for cf in corefiles:
        for b in cf.blocks:
            for d in b.directives:
                if d.name not in ("forward", "grpc"):
                    continue
                spec = forward_spec(d)
                zone = spec.from_zone if spec.from_zone != "." else (b.zones[0] if b.zones else ".")
                stub = _is_stub_upstream(cf, b.ports, zone, spec.raw_targets)
                if stub and assembly is not None:
                    stub = is_stub(cf, b, b.zones[0] if b.zones else ".", spec, assembly.role_of(cf))
                bad_zone = _not_a_dns_name(fqdn(zone))
                for t in spec.targets:
                    if t.kind is not TargetKind.IP or t.scheme not in ("dns",):
                        notes.append(f"{cf.name} line {d.line}: {t.raw} not probed ({t.note or t.kind})")
                        continue
                    if bad_zone:
                        notes.append(f"{cf.name} line {d.line}: {t.raw} not probed (its zone {zone} "
                                     f"cannot be asked: {bad_zone})")
                        continue
                    out.append(Upstream(corefile=cf.name, block=b.label, line=d.line,
                                        file_line=cf.file_line(d.line), zone=fqdn(zone),
                                        target=t.host, port=t.port or 53, stub=stub))
    return out, notes


def _not_a_dns_name(name: str) -> str | None:
    """Why NAME cannot be put in a DNS question (a label over 63 octets, a name over 255,
    text IDNA refuses), or None."""
    import dns.exception
    import dns.name

    try:
        dns.name.from_text(name)
    except (dns.exception.DNSException, UnicodeError) as exc:
        return (str(exc) or type(exc).__name__)[:120]
    return None


def _ask(up: Upstream, names: Sequence[str], deadline: Deadline, timeout: float) -> TargetCheck:
    soa = tuple(query(up.target, up.zone, "SOA", tr, deadline.timeout(timeout), port=up.port)
                for tr in (Transport.UDP, Transport.TCP))
    asked = tuple(query(up.target, n, "A", Transport.UDP, deadline.timeout(timeout), port=up.port)
                  for n in names if in_zone(n, up.zone))
    return TargetCheck(upstream=up, soa=soa, names=asked)


def _unanswered(c: TargetCheck) -> TargetCheck:
    """A target that gave no DNS answer at all: unchecked, refusing or unreachable."""
    results = c.soa + c.names
    errs = {q.error for q in results}
    if errs <= {QueryError.DEADLINE}:
        # Not sent before the deadline, or cut by SIGINT/SIGTERM: nothing was observed,
        # so nothing may be concluded either way (never "unreachable", never "ok").
        return replace(c, status=CheckStatus.UNCHECKED, detail="; ".join(sorted(
            {q.error_detail or "deadline" for q in results})))
    detail = "; ".join(sorted(f"{q.transport}: {q.error_detail or q.error}" for q in c.soa))
    if errs & _SERVER_DOWN:
        return replace(c, status=CheckStatus.REFUSING, detail=detail)
    return replace(c, status=CheckStatus.UNREACHABLE, detail=detail)


def _classify(c: TargetCheck) -> TargetCheck:
    results = c.soa + c.names
    if not any(q.answered for q in results):
        return _unanswered(c)
    # For the root zone the real workload is the names: an upstream that answers them is
    # fine even if it will not give the root SOA (an authoritative-only server refuses it).
    judged = c.soa
    if c.upstream.zone == "." and any(q.rcode == "NOERROR" for q in c.names):
        judged = c.names
    if any(q.rcode == "REFUSED" for q in judged):
        return replace(c, status=CheckStatus.REFUSING, detail="answers REFUSED for "
                       + ("its zone's SOA" if judged is c.soa else "the names asked"))
    # Lame (RFC 1912 2.8): the server is asked for a zone it does not serve: SERVFAIL or
    # NXDOMAIN for the zone apex. NOERROR without an SOA (NODATA) still serves the zone.
    if c.upstream.zone != "." and any(q.rcode in ("SERVFAIL", "NXDOMAIN") for q in c.soa):
        codes = ", ".join(sorted({q.outcome() for q in c.soa}))
        return replace(c, status=CheckStatus.LAME, detail=f"does not serve {c.upstream.zone} ({codes})")
    # SERVFAIL to every question it answered (or to every name asked): it cannot resolve
    # what the block forwards to it (RFC 1035 4.1.1: "server failure"), however fast it says so.
    answered = [q for q in results if q.answered]
    asked = [q for q in c.names if q.answered]
    if all(q.rcode == "SERVFAIL" for q in answered) or (asked and all(q.rcode == "SERVFAIL" for q in asked)):
        failed = [q for q in answered if q.rcode == "SERVFAIL"]
        return replace(c, status=CheckStatus.SERVFAIL, detail=f"SERVFAIL to {len(failed)} of {len(answered)} "
                       "questions answered: " + ", ".join(sorted({f"{q.qname} {q.qtype}" for q in failed})[:4]))
    worst = max((q.latency_ms or 0.0) for q in results if q.answered)
    if worst > SLOW_MS:
        return replace(c, status=CheckStatus.SLOW, detail=f"{worst:.0f} ms")
    return c


def _compare(c: TargetCheck, ref: TargetCheck | None) -> TargetCheck:
    if ref is None or ref.upstream.target == c.upstream.target or c.status not in _COMPARABLE:
        return c
    diffs = []
    if c.serial is not None and ref.serial is not None and c.serial != ref.serial:
        diffs.append(f"SOA serial of {c.upstream.zone}: {c.serial} vs {ref.serial}")
    mine = {q.qname: tuple(sorted(q.answers)) for q in c.names if q.answered}
    theirs = {q.qname: tuple(sorted(q.answers)) for q in ref.names if q.answered}
    for qn, ans in mine.items():
        if qn in theirs and ans != theirs[qn]:
            diffs.append(f"{qn} A: {', '.join(ans) or '(none)'} vs {', '.join(theirs[qn]) or '(none)'}")
    if not diffs:
        return replace(c, compared_with=ref.upstream.target)
    return replace(c, status=CheckStatus.DIFFERS, compared_with=ref.upstream.target,
                   differences=tuple(diffs), detail="; ".join(diffs))


def _reference(up: Upstream, corefiles: Sequence[Corefile], listen: Mapping[str, int]) -> Upstream | None:
    """The default upstream a stub target is compared with (None: not a stub, or no default
    upstream with an address that is not another given Corefile)."""
    if not up.stub:
        return None
    cf = next(c for c in corefiles if c.name == up.corefile)
    spec = default_forward(cf, 53)
    if spec is None:
        return None
    ref_t: Target | None = next((t for t in spec.targets if t.kind is TargetKind.IP), None)
    if ref_t is None or ref_t.host in listen:
        return None
    return Upstream(corefile=up.corefile, block=".", line=spec.line, file_line=cf.file_line(spec.line),
                    zone=up.zone, target=ref_t.host, port=ref_t.port or 53, stub=False)


def check_corefiles(corefiles: Sequence[Corefile], *, names: Sequence[str] = (), deadline: Deadline,
                    timeout: float = 2.0, assembly: Assembly | None = None
                    ) -> tuple[list[TargetCheck], list[str]]:
    """Ask every forward target (at most MAX_TARGETS) and classify it; a stub target is
    compared with its config's default upstream. (checks, notes)."""
    ups, notes = upstreams(corefiles, assembly)
    if len(ups) > MAX_TARGETS:
        notes.append(f"{len(ups)} forward targets: checked the first {MAX_TARGETS}")
        ups = ups[:MAX_TARGETS]
    # Every target that serves a stub zone is compared with the default upstream of its own
    # config, asked the very same questions (its zone's SOA and the names).
    listen = listen_map(corefiles, {})
    def key(u: Upstream) -> tuple[str, int, str, tuple[str, ...]]:
        return (u.target, u.port, u.zone, tuple(names))

    jobs: dict[tuple[str, int, str, tuple[str, ...]], Upstream] = {}
    pairs = [(up, _reference(up, corefiles, listen)) for up in ups]
    for up, ref_up in pairs:
        for u in (up, ref_up):
            if u is not None:
                jobs.setdefault(key(u), u)
    with ThreadPoolExecutor(max_workers=max(1, min(16, len(jobs)))) as pool:
        futs = {k: pool.submit(_ask, u, names, deadline, timeout) for k, u in jobs.items()}
        done = {k: _classify(f.result()) for k, f in futs.items()}
    out = []
    for up, ref_up in pairs:
        c = done[key(up)]
        c = TargetCheck(upstream=up, soa=c.soa, names=c.names, status=c.status, detail=c.detail)
        out.append(_compare(c, done.get(key(ref_up)) if ref_up else None))
    return out, notes


def _where(u: Upstream) -> str:
    return f"{u.corefile} block {u.block} (line {u.file_line or u.line})"


def _data(c: TargetCheck) -> dict[str, object]:
    u = c.upstream
    return {"corefile": u.corefile, "block": u.block, "line": u.line, "file_line": u.file_line,
            "zone": u.zone, "target": u.target, "status": c.status}


def _differs(c: TargetCheck) -> Finding | None:
    if c.status is not CheckStatus.DIFFERS:
        return None
    u = c.upstream
    return Finding(
        code="stub-upstream-differs", severity=Severity.CRITICAL,
        summary=f"{_where(u)} forwards {u.zone} to {u.target}, whose answers differ from the default "
        f"upstream {c.compared_with}",
        evidence=c.differences,
        remedy=f"this is the signature of a forgotten stub forward to a stale or retired server: "
        f"re-point or delete the block at line {u.file_line or u.line}, then flush the caches "
        "(restart CoreDNS and NodeLocal DNSCache)",
        verdict=Verdict.BAD_ANSWER, data={**_data(c), "compared_with": c.compared_with,
                                          "differences": list(c.differences)})


def _down(c: TargetCheck) -> Finding | None:
    if c.status not in (CheckStatus.UNREACHABLE, CheckStatus.REFUSING):
        return None
    u = c.upstream
    return Finding(
        code=f"upstream-{c.status}", severity=Severity.CRITICAL,
        summary=f"{_where(u)}: forward target {u.target} is {c.status} ({c.detail})", evidence=(),
        remedy="every query this block forwards there fails or waits for CoreDNS's timeout: fix or "
        "remove the target", verdict=Verdict.DNS_UNAVAILABLE, data=_data(c))


def _lame(c: TargetCheck) -> Finding | None:
    if c.status is not CheckStatus.LAME:
        return None
    u = c.upstream
    return Finding(
        code="upstream-lame", severity=Severity.CRITICAL,
        summary=f"{_where(u)}: forward target {u.target} does not serve {u.zone} ({c.detail})", evidence=(),
        remedy="the target answers, but not for this zone: point the block at a server that does",
        verdict=Verdict.DNS_ERROR, data=_data(c))


def _servfail(c: TargetCheck) -> Finding | None:
    if c.status is not CheckStatus.SERVFAIL:
        return None
    u = c.upstream
    return Finding(
        code="upstream-servfail", severity=Severity.CRITICAL,
        summary=f"{_where(u)}: forward target {u.target} answers SERVFAIL ({c.detail})", evidence=(),
        remedy="the target is up but cannot resolve: check its own upstreams/recursion, zone loading "
        "and DNSSEC validation (its logs say which)", verdict=Verdict.DNS_ERROR, data=_data(c))


def _unchecked(c: TargetCheck) -> Finding | None:
    if c.status is not CheckStatus.UNCHECKED:
        return None
    u = c.upstream
    return Finding(
        code="upstream-unchecked", severity=Severity.WARNING,
        summary=f"{_where(u)}: forward target {u.target} was not checked ({c.detail})", evidence=(),
        remedy="give the check more time (--deadline) or let it finish: an upstream that was not "
        "asked cannot be vouched for", verdict=Verdict.INDETERMINATE, data=_data(c))


def _slow(c: TargetCheck) -> Finding | None:
    if c.status is not CheckStatus.SLOW:
        return None
    u = c.upstream
    return Finding(code="upstream-slow", severity=Severity.WARNING,
                   summary=f"{_where(u)}: forward target {u.target} answers slowly ({c.detail})",
                   evidence=(), remedy="check the upstream's load and the path to it", verdict=None,
                   data=_data(c))


# One rule per status (the statuses exclude each other, so a target gets at most one finding).
CheckRule = Callable[[TargetCheck], "Finding | None"]
CHECK_RULES: tuple[CheckRule, ...] = (_differs, _down, _lame, _servfail, _unchecked, _slow)


def check_findings(checks: Sequence[TargetCheck]) -> list[Finding]:
    """The findings of the targets checked, in target order."""
    return [f for c in checks for rule in CHECK_RULES if (f := rule(c)) is not None]


def _target_json(c: TargetCheck) -> dict[str, object]:
    u = c.upstream
    return {"corefile": u.corefile, "block": u.block, "line": u.line, "file_line": u.file_line,
            "zone": u.zone, "target": u.target, "port": u.port, "stub": u.stub, "status": c.status,
            "serial": c.serial, "compared_with": c.compared_with,
            "differences": list(c.differences), "detail": c.detail,
            "results": list(c.soa + c.names)}


def check_report(checks: Sequence[TargetCheck], notes: Sequence[str], subject: str = "",
                 assembly: Assembly | None = None) -> Report:
    """The Report of ``corefile check``: the verdict of the worst target (indeterminate when
    there was none to probe)."""
    findings = check_findings(checks)
    rows = tuple((c.upstream.corefile, c.upstream.block, str(c.upstream.file_line or c.upstream.line),
                  c.upstream.zone, c.upstream.target, c.status.value,
                  "" if c.serial is None else str(c.serial), c.compared_with or "", c.detail)
                 for c in checks)
    verdict = derive_verdict(findings)
    if not checks:
        verdict = Verdict.INDETERMINATE
        notes = list(notes) + ["no forward target with an IP address to probe"]
    data = {"targets": [_target_json(c) for c in checks],
            "corefiles": role_json(assembly) if assembly else []}
    role_table = (Table("Corefiles (what each was taken for)", ("corefile", "role", "from", "why"),
                        role_rows(assembly)),) if assembly else ()
    return Report(command="corefile check", verdict=verdict, findings=tuple(findings), data=data,
                  tables=(Table("Forward targets", ("corefile", "block", "line", "zone", "target",
                                                    "status", "serial", "compared with", "detail"),
                                rows),) + role_table,
                  subject=subject, notes=tuple(notes))
