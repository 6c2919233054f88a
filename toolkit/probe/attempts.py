"""How one probe of one address is run: the privileged attempt with its unprivileged
fallback, the pacing with a second try, and the guard that makes every outcome a result.

An attempt is a function of the monotonic end of its window that returns the probe's
result; nothing here raises for a network outcome (an OSError of a socket call becomes an
``error`` result).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from toolkit.deadline import Deadline
from toolkit.probe.model import NET_RAW_HINT, ProbeKind, ProbeOutcome, ProbeResult, ProbeSpec
from toolkit.probe.pacer import Grant, Pacer
from toolkit.probe.path import route_of, source_of

WINDOW = 4.0  # one attempt: the last router's ARP gives up after ~3 s (3 probes 1 s apart)
ARP_FAILURE_S = 3.0
ARP_WINDOW = 3.0  # arping -c3: three who-has one second apart, the last one given a second
MIN_WINDOW = 0.3  # below this a probe is not worth sending
SECOND_ATTEMPT_MIN = 3.5  # a silent probe is tried again only if this much time is left
CONTROL_TCP_PORT = 80  # control-tcp when no port is given: any answer (even RST) proves life
RAW_SYN_COST = 1.0  # tokens: one SYN, one possible ICMP error
CONNECT_COST = 2.0  # the kernel resends a connect()'s SYN after 1 s: two possible ICMP errors
ECHO_COST = 1.0

Attempt = Callable[[float], ProbeResult]  # the end of the window (monotonic) -> the result

_PROVES_DEAD = frozenset({ProbeOutcome.HOST_UNREACHABLE, ProbeOutcome.NET_UNREACHABLE,
                          ProbeOutcome.TTL_EXCEEDED})


@dataclass(frozen=True, kw_only=True)
class Known:
    """What an address's probes already proved: alive (it answered), or dead and why."""

    alive: bool
    why: str = ""


@dataclass(kw_only=True)
class ProbeContext:
    """What every probe of one run shares: the deadline, the privileges, the pacer, and
    what the probes already proved per address."""

    deadline: Deadline
    raw: bool  # raw sockets usable (NET_RAW)
    ping: bool  # unprivileged ICMP datagram socket usable
    ping_why: str
    pacer: Pacer
    known: dict[str, Known] = field(default_factory=dict)  # what a probe already proved per address

    def end(self, window: float) -> float:
        """The end (monotonic) of a window of ``window`` seconds, cut by the deadline."""
        return time.monotonic() + self.deadline.timeout(window)


def _raw_usable() -> bool:
    from toolkit.sysinfo.caps import has_cap

    if not has_cap("NET_RAW"):
        return False
    try:
        socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP).close()
        return True
    except OSError:
        return False


def capabilities() -> tuple[str, ...]:
    """The capabilities relevant to probing that this process holds."""
    from toolkit.sysinfo.caps import has_cap

    return tuple(c for c in ("NET_RAW", "NET_ADMIN") if has_cap(c))


def make_context(deadline: Deadline) -> ProbeContext:
    """The context of one run: which sockets this process may open, a fresh pacer."""
    from toolkit.probe.icmp import ping_socket_allowed

    raw = _raw_usable()
    ping, why = (False, "") if raw else ping_socket_allowed()
    return ProbeContext(deadline=deadline, raw=raw, ping=ping, ping_why=why, pacer=Pacer())


def lost_without_raw(ctx_raw: bool, ping: bool, ping_why: str, on_link: bool, v6: bool = False) -> tuple[str, ...]:
    """What the unprivileged fallbacks cannot observe (empty with NET_RAW)."""
    if ctx_raw:
        return ()
    out = ["half-open TCP probes: without NET_RAW the probe is a full connect(), which the "
           "application sees as a connection (ICMP codes still read via "
           f"{'IPV6_RECVERR' if v6 else 'IP_RECVERR'}); " + NET_RAW_HINT]
    if not ping:
        out.append(f"ICMP echo: {ping_why or 'no ICMP datagram socket'}; {NET_RAW_HINT}")
    if on_link and not v6:
        out.append("ARP: only the kernel's neighbour table after the connect attempts, no "
                   f"who-has of our own; {NET_RAW_HINT}")
    if on_link and v6:
        out.append("Neighbour Discovery: only the kernel's neighbour table after the connect "
                   f"attempts, no Neighbor Solicitation of our own; {NET_RAW_HINT}")
    return tuple(out)


# ------------------------------------------------------------------------------ pacing

def paced(ctx: ProbeContext, ticket: int, cost: float, attempt: Attempt, probe: ProbeSpec) -> ProbeResult:
    """Run ``attempt(end)`` under the pacer; try a silent probe once more if time allows.

    Once an address is known alive its remaining probes go without a token (the host
    answers for itself); once it is known dead (host/net unreachable) they are skipped, to
    spare the routers' ICMP budget for the other addresses."""
    result: ProbeResult | None = None
    for n in range(2):
        grant = _acquire(ctx, probe.address, ticket if n == 0 else None, cost)
        if grant is None:
            break
        if grant in (Grant.LATE, Grant.SKIP):
            if result is None:
                return probe.not_run(_why_not_sent(ctx, probe.address, grant))
            break
        window = ctx.deadline.timeout(WINDOW)
        try:
            res = attempt(time.monotonic() + window)
        except OSError as exc:
            res = probe.error(exc)
        _learn(ctx, probe.address, res, grant, cost)
        if res.result is ProbeOutcome.SILENCE and window < ARP_FAILURE_S + 0.4:
            res = _with_detail(res, f"window {window:.1f} s: shorter than the ~3 s a router needs "
                                    "to report a failed ARP (raise --deadline)")
        if result is not None and res.result is ProbeOutcome.SILENCE:
            res = _with_detail(res, "silent on 2 attempts")
        result = res
        if res.result is not ProbeOutcome.SILENCE:
            break
    assert result is not None  # the first round either returned or set it
    return result


def _acquire(ctx: ProbeContext, address: str, ticket: int | None, cost: float) -> Grant | None:
    """The pacer's grant for a first attempt (its ticket) or a second one (None: not enough
    time left for a second try)."""
    def verdict() -> Grant | None:
        known = ctx.known.get(address)
        if known is None:
            return None
        return Grant.FREE if known.alive else Grant.SKIP

    if ticket is not None:
        return ctx.pacer.acquire(ticket, ctx.deadline.expires_at - MIN_WINDOW, cost, verdict)
    if ctx.deadline.remaining() < SECOND_ATTEMPT_MIN:
        return None
    return ctx.pacer.acquire(ctx.pacer.ticket(), ctx.deadline.expires_at - SECOND_ATTEMPT_MIN, cost, verdict)


def _why_not_sent(ctx: ProbeContext, address: str, grant: Grant) -> str:
    if grant is Grant.SKIP:
        known = ctx.known.get(address)
        return f"skipped: {address} is already known {known.why if known else '?'}"
    return "not sent: spacing for the routers' ICMP rate limit would have passed the deadline"


def _learn(ctx: ProbeContext, address: str, res: ProbeResult, grant: Grant, cost: float) -> None:
    """What this result proves about ``address``, for its probes still waiting."""
    if res.answered:
        if grant is Grant.TOKEN:
            ctx.pacer.refund(cost)
        ctx.known[address] = Known(alive=True)
        ctx.pacer.notify()
    elif res.result in _PROVES_DEAD:
        ctx.known.setdefault(address, Known(alive=False, why=(
            f"{res.result} ({res.kind}{'' if res.port is None else '/' + str(res.port)}"
            f" from {res.reply_from or '?'})")))
        ctx.pacer.notify()


def _with_detail(res: ProbeResult, more: str) -> ProbeResult:
    return replace(res, detail=f"{res.detail}; {more}" if res.detail else more)


# ------------------------------------------------------------------------------ attempts

def tcp_attempt(ctx: ProbeContext, address: str, port: int, source: str | None, *,
                control: bool = False) -> tuple[Attempt, ProbeKind, float]:
    """(attempt, kind, pacer cost) of a TCP probe: a raw SYN with NET_RAW (a connect() if
    the raw socket is refused after all), else a connect()."""
    from toolkit.probe.tcp import connect_probe, syn_probe

    if ctx.raw and source:  # IPv4 and IPv6
        kind = ProbeKind.CONTROL_TCP if control else ProbeKind.TCP_SYN
        fallback = ProbeKind.CONTROL_TCP if control else ProbeKind.TCP_CONNECT
        src = source

        def run(end: float) -> ProbeResult:
            try:
                return syn_probe(address, port, src, end, kind=kind)
            except PermissionError:
                return connect_probe(address, port, end, kind=fallback)
        return run, kind, RAW_SYN_COST
    kind = ProbeKind.CONTROL_TCP if control else ProbeKind.TCP_CONNECT
    return (lambda end: connect_probe(address, port, end, kind=kind)), kind, CONNECT_COST


def echo_attempt(ctx: ProbeContext, address: str, kind: ProbeKind = ProbeKind.ICMP_ECHO) -> Attempt | None:
    """An ICMP echo: raw with NET_RAW (the ping socket if refused after all), else the ping
    socket where allowed; None when neither is possible."""
    from toolkit.probe.icmp import dgram_echo, raw_echo

    if ctx.raw:
        def run(end: float) -> ProbeResult:
            try:
                return raw_echo(address, end, kind=kind)
            except PermissionError:
                return dgram_echo(address, end, kind=kind)
        return run
    if ctx.ping:
        return lambda end: dgram_echo(address, end, kind=kind)
    return None


def control_probes(ctx: ProbeContext, ctl: str,
                   ports: Sequence[int]) -> list[tuple[ProbeSpec, Callable[[], ProbeResult]]]:
    """The probes of a control address, ready to run. Not paced: the control answers for
    itself, no router ICMP."""
    out: list[tuple[ProbeSpec, Callable[[], ProbeResult]]] = []
    echo = echo_attempt(ctx, ctl, kind=ProbeKind.CONTROL_ICMP)
    if echo is not None:
        icmp = ProbeSpec(address=ctl, kind=ProbeKind.CONTROL_ICMP)
        out.append((icmp, lambda: guard(lambda: echo(ctx.end(WINDOW)), icmp, ctx.deadline)))
    port = ports[0] if ports else CONTROL_TCP_PORT
    run, kind, _cost = tcp_attempt(ctx, ctl, port, source_of(ctl, route_of(ctl)), control=True)
    tcp = ProbeSpec(address=ctl, kind=kind, port=port)
    out.append((ProbeSpec(address=ctl, kind=kind),
                lambda: guard(lambda: run(ctx.end(WINDOW)), tcp, ctx.deadline)))
    return out


def guard(fn: Callable[[], ProbeResult], probe: ProbeSpec, deadline: Deadline | None = None) -> ProbeResult:
    """Run one probe: ``not-run`` when the deadline leaves too little time, ``error`` when a
    socket call fails."""
    if deadline is not None and deadline.remaining() < MIN_WINDOW:
        return probe.not_run("not sent: the deadline had passed")
    try:
        return fn()
    except OSError as exc:
        return probe.error(exc)
