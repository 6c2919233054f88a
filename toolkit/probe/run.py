"""Probe many addresses at once under one deadline: the plan, the threads, the reports.

Every probe runs in its own thread and is bounded by its window and the deadline; nothing
here raises for a network outcome. Packets that may draw an ICMP error from a router are
paced (toolkit.probe.pacer) in priority order: the first port of every address, the echo of
every address, then the remaining ports. Direct answers (SYN-ACK, RST, echo reply) refund
their token.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from toolkit import signals
from toolkit.deadline import Deadline
from toolkit.probe.attempts import (
    ARP_WINDOW,
    ECHO_COST,
    Attempt,
    ProbeContext,
    capabilities,
    control_probes,
    echo_attempt,
    guard,
    lost_without_raw,
    make_context,
    paced,
    tcp_attempt,
)
from toolkit.probe.model import (
    CONTROL_KINDS,
    NEIGHBOUR_KINDS,
    AddressReport,
    ProbeKind,
    ProbeOutcome,
    ProbeResult,
    ProbeSpec,
    ReachResult,
    ResolvedFrom,
)
from toolkit.probe.path import control_address, route_of, source_of
from toolkit.sysinfo.routes import Route
from toolkit.sysinfo.routes import RouteKind

Progress = Callable[[str], None] | None
# (a probe still running, the results so far) -> why its answer is no longer needed, or None
Settled = Callable[[ProbeSpec, dict[ProbeSpec, ProbeResult]], "str | None"]
JOIN_GRACE_S = 0.5  # the probes' threads may end this long after the deadline
_ORDER = {ProbeKind.ARP: 0, ProbeKind.ND: 0, ProbeKind.ICMP_ECHO: 1, ProbeKind.TCP_SYN: 2,
          ProbeKind.TCP_CONNECT: 2}  # a report lists the link first, then echo, then the ports


@dataclass(frozen=True, kw_only=True)
class _Target:
    """One address to probe and where its probes go."""

    address: str
    route: Route | None
    source: str | None
    control: str | None

    @property
    def sendable(self) -> bool:
        """False when the route refuses at once (unreachable, blackhole...): it says it all."""
        return self.route is None or self.route.kind in (RouteKind.UNICAST, RouteKind.LOCAL)


class _Runner:
    """Every probe of the run in its own thread; its result under its slot (which probe)."""

    def __init__(self) -> None:
        self._results: dict[ProbeSpec, ProbeResult] = {}
        self._lock = threading.Lock()
        self._changed = threading.Event()  # a probe ended
        self._threads: list[tuple[threading.Thread, ProbeSpec]] = []

    def start(self, slot: ProbeSpec, fn: Callable[[], ProbeResult]) -> None:
        def body() -> None:
            res = guard(fn, slot)
            with self._lock:
                self._results[slot] = res
            self._changed.set()

        t = threading.Thread(target=body, name=f"probe-{slot.address}-{slot.kind}-{slot.port}", daemon=True)
        self._threads.append((t, slot))
        t.start()

    def results(self) -> dict[ProbeSpec, ProbeResult]:
        """The results of the probes that ended so far."""
        with self._lock:
            return dict(self._results)

    def finish(self, until: float, settled: Settled | None = None) -> dict[ProbeSpec, ProbeResult]:
        """Join the threads until ``until`` (sliced: after SIGINT/SIGTERM the probes return
        within signals.TICK_S), or until every probe still running is ``settled`` (its
        answer can no longer change what is known: not-run, with the reason); a probe still
        running at ``until`` is not-run."""
        while settled is not None and not signals.stopped() and time.monotonic() < until:
            done = self.results()
            if all(slot in done or settled(slot, done) for _t, slot in self._threads):
                break
            self._changed.wait(signals.tick(until - time.monotonic()))
            self._changed.clear()
        done = self.results()
        why = {slot: settled(slot, done) if settled is not None else None for _t, slot in self._threads}
        signals.join([t for t, slot in self._threads if why[slot] is None], until)
        done = self.results()
        for _t, slot in self._threads:
            if slot not in done:
                done[slot] = slot.not_run(why[slot] or "did not finish by the deadline")
        return done


def probe_addresses(addresses: Sequence[str], ports: Sequence[int], deadline: Deadline, *,
                    control: bool = True, on_progress: Progress = None) -> tuple[AddressReport, ...]:
    """Probe every address concurrently under ``deadline``; one AddressReport each, in order.

    Per address: route; ARP/ND when on-link (raw who-has / solicitation with NET_RAW, else
    the neighbour table read after the other probes); ICMP echo; TCP to each port (raw SYN,
    else connect()); and, with ``control``, probes of the control address (shared by the
    addresses that have the same one). Packets that can draw router ICMP errors are paced
    in the order: first port of every address, echo of every address, remaining ports.
    Never raises for network outcomes; addresses must be IP literals (UsageError otherwise).
    """
    addrs = _addresses(addresses)
    ports = tuple(dict.fromkeys(int(p) for p in ports))
    ctx = make_context(deadline)
    targets = []
    for a in addrs:
        route = route_of(a)
        targets.append(_Target(address=a, route=route, source=source_of(a, route),
                               control=control_address(a, route) if control else None))
    if on_progress is not None:
        on_progress(f"probing {', '.join(addrs)}" + (f" ports {', '.join(map(str, ports))}" if ports else "")
                    + ("" if ctx.raw else " (no NET_RAW: connect() and unprivileged fallbacks)"))
    runner = _Runner()
    for slot, attempt, cost in _paced_plan(ctx, targets, ports):
        runner.start(slot, _paced_run(ctx, ctx.pacer.ticket(), cost, attempt, slot))
    for t in targets:  # not paced: no router in between
        neighbour = _neighbour_probe(ctx, t)
        if neighbour is not None:
            runner.start(*neighbour)
    for ctl in dict.fromkeys(t.control for t in targets if t.control):  # one set per control address
        for slot, fn in control_probes(ctx, ctl, ports):
            runner.start(slot, fn)
    done = runner.finish(time.monotonic() + deadline.remaining() + JOIN_GRACE_S, _link_settled)
    return tuple(_address_report(ctx, t, done, ports) for t in targets)


def _link_settled(slot: ProbeSpec, done: dict[ProbeSpec, ProbeResult]) -> str | None:
    """Why a running probe of an on-link address need not be waited for: our own ARP/ND
    solicitations went unanswered and the kernel's neighbour entry agreed (toolkit.probe.arp),
    so its SYN or echo could only end in the kernel's own give-up ~3 s later (a local
    host-unreachable) or stay silent. The control probes always run to their end: "nobody
    holds the address" needs the link itself to work (derive_state)."""
    if slot.kind in CONTROL_KINDS or slot.kind in NEIGHBOUR_KINDS:
        return None
    link = next((r for s, r in done.items() if s.address == slot.address and s.kind in NEIGHBOUR_KINDS), None)
    if link is None or link.result is not ProbeOutcome.SILENCE:
        return None
    return f"not waited for: {link.detail}"


def _addresses(addresses: Sequence[str]) -> list[str]:
    from toolkit.errors import UsageError

    addrs: list[str] = []
    for a in addresses:
        try:
            norm = str(ipaddress.ip_address(a))
        except ValueError:
            raise UsageError(f"not an IP address: {a!r}") from None
        if norm not in addrs:
            addrs.append(norm)
    return addrs


def _paced_plan(ctx: ProbeContext, targets: Sequence[_Target],
                ports: tuple[int, ...]) -> list[tuple[ProbeSpec, Attempt, float]]:
    """The probes that may draw router ICMP errors, in pacing priority order."""
    plan: list[tuple[ProbeSpec, Attempt, float]] = []
    sendable = [t for t in targets if t.sendable]
    for t in sendable:
        if ports:
            run, kind, cost = tcp_attempt(ctx, t.address, ports[0], t.source)
            plan.append((ProbeSpec(address=t.address, kind=kind, port=ports[0]), run, cost))
    for t in sendable:
        echo = echo_attempt(ctx, t.address)
        if echo is not None:
            plan.append((ProbeSpec(address=t.address, kind=ProbeKind.ICMP_ECHO), echo, ECHO_COST))
    for t in sendable:
        for p in ports[1:]:
            run, kind, cost = tcp_attempt(ctx, t.address, p, t.source)
            plan.append((ProbeSpec(address=t.address, kind=kind, port=p), run, cost))
    return plan


def _paced_run(ctx: ProbeContext, ticket: int, cost: float, attempt: Attempt,
               slot: ProbeSpec) -> Callable[[], ProbeResult]:
    return lambda: paced(ctx, ticket, cost, attempt, slot)


def _neighbour_probe(ctx: ProbeContext, t: _Target) -> tuple[ProbeSpec, Callable[[], ProbeResult]] | None:
    """ARP (IPv4) or Neighbour Discovery (IPv6) of an on-link address, with NET_RAW."""
    r, a = t.route, t.address
    if not ctx.raw or r is None or not r.on_link or not r.interface:
        return None
    interface, source = r.interface, t.source
    if ":" not in a and source:
        from toolkit.probe.arp import arp_probe

        arp = ProbeSpec(address=a, kind=ProbeKind.ARP)
        return arp, lambda: guard(lambda: arp_probe(a, interface, source, ctx.end(ARP_WINDOW)), arp, ctx.deadline)
    if ":" in a:
        from toolkit.probe.nd import nd_probe  # the IPv6 analogue of ARP

        nd = ProbeSpec(address=a, kind=ProbeKind.ND)
        return nd, lambda: guard(lambda: nd_probe(a, interface, source, ctx.end(ARP_WINDOW)), nd, ctx.deadline)
    return None


def _address_report(ctx: ProbeContext, t: _Target, done: dict[ProbeSpec, ProbeResult],
                    ports: tuple[int, ...]) -> AddressReport:
    r, a = t.route, t.address
    probes = [res for slot, res in done.items() if slot.address == a and slot.kind not in CONTROL_KINDS]
    if r is not None and r.on_link and not ctx.raw:
        from toolkit.probe.arp import neighbour_probe

        probes.append(neighbour_probe(a, r.interface))
    if not t.sendable and r is not None:
        kind = ProbeKind.TCP_SYN if ctx.raw else ProbeKind.TCP_CONNECT
        probes.append(ProbeSpec(address=a, kind=kind, port=ports[0] if ports else None).not_run(
            f"not sent: the route is {r.describe()}"))
    probes.sort(key=lambda p: (_ORDER.get(p.kind, 3), p.port or 0))
    control = [res for slot, res in done.items()
               if t.control and slot.address == t.control and slot.kind in CONTROL_KINDS]
    # A control is healthy if any of its probes answered: the answering probe goes first.
    control.sort(key=lambda c: not c.answered)
    lost = lost_without_raw(ctx.raw, ctx.ping, ctx.ping_why, bool(r and r.on_link), ":" in a)
    return AddressReport(address=a, route=r, probes=tuple(probes), control=tuple(control), lost=lost)


# ------------------------------------------------------------------------------ target

@dataclass(frozen=True, kw_only=True)
class Resolved:
    """TARGET as addresses: how (an address, or getaddrinfo), why not, and how long it took."""

    addresses: tuple[str, ...]
    how: ResolvedFrom
    error: str | None = None
    ms: float | None = None


def resolve_target(target: str, deadline: Deadline) -> Resolved:
    """An IP literal as is, a name through getaddrinfo (the system resolver, as the
    application sees it) in a thread bounded by the deadline."""
    try:
        return Resolved(addresses=(str(ipaddress.ip_address(target)),), how=ResolvedFrom.ADDRESS)
    except ValueError:
        pass
    infos: list[str] = []
    errors: list[str] = []

    def work() -> None:
        try:
            infos.extend(str(i[4][0]) for i in socket.getaddrinfo(target, None, proto=socket.IPPROTO_TCP))
        except socket.gaierror as exc:
            errors.append(f"getaddrinfo: {exc.strerror or exc} (EAI {exc.errno})")
        except (OSError, UnicodeError) as exc:
            errors.append(f"getaddrinfo: {exc}")

    t0 = time.monotonic()
    t = threading.Thread(target=work, name="getaddrinfo", daemon=True)
    t.start()
    signals.join([t], time.monotonic() + deadline.timeout(max(1.0, deadline.remaining() / 2)), grace=0.0)
    ms = (time.monotonic() - t0) * 1000.0
    how = ResolvedFrom.GETADDRINFO
    if t.is_alive():
        return Resolved(addresses=(), how=how, error=f"getaddrinfo did not return within {ms / 1000:.1f} s", ms=ms)
    if errors:
        return Resolved(addresses=(), how=how, error=errors[0], ms=ms)
    addrs = tuple(dict.fromkeys(str(ipaddress.ip_address(i.split("%")[0])) for i in infos))
    return Resolved(addresses=addrs, how=how, ms=ms)


def reach(target: str, ports: Sequence[int], deadline: Deadline, *, control: bool = True,
          on_progress: Progress = None) -> ReachResult:
    """`podtriage reach`: resolve TARGET with the system resolver (or take the address)
    and probe every address. Never raises for network outcomes."""
    res = resolve_target(target, deadline)
    if res.how is ResolvedFrom.GETADDRINFO and on_progress is not None:
        on_progress(f"{target} -> {', '.join(res.addresses) or res.error}")
    reports = (probe_addresses(res.addresses, ports, deadline, control=control, on_progress=on_progress)
               if res.addresses else ())
    lost = tuple(dict.fromkeys(line for r in reports for line in r.lost))
    return ReachResult(
        target=target, addresses=reports, capabilities=capabilities(), lost=lost, ports=tuple(ports),
        resolved_from=res.how, resolve_error=res.error, resolve_ms=res.ms)
