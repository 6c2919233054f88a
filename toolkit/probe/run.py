"""Probe many addresses at once under one deadline: routes, probes, control probes, pacing.

Every probe runs in its own thread and is bounded by its window and the deadline; nothing
here raises for a network outcome. Packets that may draw an ICMP error from a router are
paced (``Pacer``): Linux answers with ICMP errors at a per-destination rate (a burst of
~6, then one per net.ipv4.icmp_ratelimit = 1000 ms), and every probe of every address
goes back to the same prober, so a burst larger than that turns host-unreachable into
silence. Direct answers (SYN-ACK, RST, echo reply) refund their token.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from toolkit import signals
from toolkit.deadline import Deadline
from toolkit.errors import reraise_bug
from toolkit.probe.model import NET_RAW_HINT, AddressReport, ProbeOutcome, ProbeResult, ReachResult
from toolkit.sysinfo.routes import Route

WINDOW = 4.0  # one attempt: the last router's ARP gives up after ~3 s (3 probes 1 s apart)
ARP_FAILURE_S = 3.0
ARP_WINDOW = 3.0  # arping -c3: three who-has one second apart, the last one given a second
MIN_WINDOW = 0.3  # below this a probe is not worth sending
SECOND_ATTEMPT_MIN = 3.5  # a silent probe is tried again only if this much time is left
PACER_BURST = 5  # Linux: XRLIM_BURST_FACTOR 6 tokens per destination; keep one spare
PACER_INTERVAL = 1.0  # net.ipv4.icmp_ratelimit default, ms -> s
CONTROL_TCP_PORT = 80  # control-tcp when no port is given: any answer (even RST) proves life

Progress = Callable[[str], None] | None


# ------------------------------------------------------------------------------ pacing

class Pacer:
    """FIFO token bucket: tickets are served in the order they were issued (priority
    order), ``burst`` at once, then one per ``interval`` seconds."""

    def __init__(self, burst: int = PACER_BURST, interval: float = PACER_INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._burst = float(burst)
        self._interval = interval
        self._tokens = float(burst)
        self._stamp = clock()
        self._cv = threading.Condition()
        self._issued = 0
        self._next = 0
        self._skipped: set[int] = set()

    def ticket(self) -> int:
        with self._cv:
            self._issued += 1
            return self._issued - 1

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._stamp) / self._interval)
        self._stamp = now

    def _advance(self) -> None:
        while self._next in self._skipped:
            self._skipped.discard(self._next)
            self._next += 1

    def acquire(self, ticket: int, latest: float, cost: float = 1.0,
                verdict: Callable[[], str | None] | None = None) -> str:
        """Wait for this ticket's turn and a token.

        Returns "token" (send, a token was spent), "late" (that would be after ``latest``),
        or whatever ``verdict()`` returns when it stops returning None while waiting
        (e.g. "free": the host is known alive and answers for itself, so no router ICMP
        will be spent; "skip": the address is already known dead)."""
        with self._cv:
            for _ in range(100_000):  # bounded; each round waits or returns
                self._refill()
                self._advance()
                decided = verdict() if verdict is not None else None
                if decided is not None:
                    self._give_up(ticket)
                    return decided
                now = self._clock()
                if now >= latest or signals.stopped():  # SIGINT/SIGTERM: send nothing more
                    self._give_up(ticket)
                    return "late"
                if ticket == self._next and self._tokens >= min(cost, self._burst):
                    self._tokens -= cost
                    self._next += 1
                    self._advance()
                    self._cv.notify_all()
                    return "token"
                need = max(0.0, (min(cost, self._burst) - self._tokens) * self._interval)
                self._cv.wait(signals.tick(min(latest - now, need if ticket == self._next else 0.25)) + 0.001)
            return "late"

    def _give_up(self, ticket: int) -> None:
        if ticket == self._next:
            self._next += 1
        elif ticket > self._next:
            self._skipped.add(ticket)
        self._advance()
        self._cv.notify_all()

    def notify(self) -> None:
        """Something a waiting ``verdict()`` looks at has changed."""
        with self._cv:
            self._cv.notify_all()

    def refund(self, cost: float = 1.0) -> None:
        """The probe got a direct answer: the router sent no ICMP error for it."""
        with self._cv:
            self._tokens = min(self._burst, self._tokens + cost)
            self._cv.notify_all()


# ------------------------------------------------------------------------------ context

@dataclass(frozen=True, kw_only=True)
class Known:
    """What an address's probes already proved: alive (it answered), or dead and why."""

    alive: bool
    why: str = ""


_PROVES_DEAD = frozenset({ProbeOutcome.HOST_UNREACHABLE, ProbeOutcome.NET_UNREACHABLE, ProbeOutcome.TTL_EXCEEDED})


@dataclass
class _Context:
    deadline: Deadline
    raw: bool  # raw sockets usable (NET_RAW)
    ping: bool  # unprivileged ICMP datagram socket usable
    ping_why: str
    pacer: Pacer
    progress: Progress
    known: dict[str, Known] = field(default_factory=dict)  # what a probe already proved per address

    def end(self, window: float) -> float:
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


def _make_context(deadline: Deadline, progress: Progress) -> _Context:
    from toolkit.probe.icmp import ping_socket_allowed

    raw = _raw_usable()
    ping, why = (False, "") if raw else ping_socket_allowed()
    return _Context(deadline, raw, ping, why, Pacer(), progress)


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


# ------------------------------------------------------------------------------ routes

def _route(address: str) -> Route | None:
    from toolkit.sysinfo.routes import route_to

    try:
        return route_to(address)
    except Exception as exc:  # noqa: BLE001 - no route information is not fatal for the probes
        reraise_bug(exc)
        return None


def _source(address: str, route: Route | None) -> str | None:
    if route is not None and route.source:
        return route.source
    try:  # the kernel's source choice, without sending anything
        with socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect((address, 9))
            return s.getsockname()[0]
    except OSError:
        return None


def control_address(address: str, route: Route | None) -> str | None:
    """The control probe's target: the route's gateway; for an on-link address, the
    default gateway when it is on the same link, else a live neighbour on that link."""
    if route is None or route.kind != "unicast":
        return None
    if route.gateway:
        return route.gateway if route.gateway != address else None
    if not route.interface:
        return None
    from toolkit.sysinfo.routes import default_gateway, interface_networks, neighbours

    try:
        ip = ipaddress.ip_address(address)
        nets = [ipaddress.ip_interface(n).network for n in interface_networks(route.interface)]
        nets = [n for n in nets if n.version == ip.version and ip in n]
        gw = default_gateway(ip.version)
        if gw and gw != address and any(ipaddress.ip_address(gw) in n for n in nets):
            return gw
        for n in neighbours(route.interface):
            if n.address != address and n.alive and n.state != "NOARP" and any(
                    ipaddress.ip_address(n.address) in net for net in nets):
                return n.address
    except Exception as exc:  # noqa: BLE001 - no control is a weaker report, not a failure
        reraise_bug(exc)
        return None
    return None


# ------------------------------------------------------------------------------ probes

def _paced(ctx: _Context, ticket: int, cost: float, attempt: Callable[[float], ProbeResult],
           address: str, kind: str, port: int | None) -> ProbeResult:
    """Run ``attempt(end)`` under the pacer; try a silent probe once more if time allows.

    Once an address is known alive its remaining probes go without a token (the host
    answers for itself); once it is known dead (host/net unreachable) they are skipped, to
    spare the routers' ICMP budget for the other addresses."""

    def verdict() -> str | None:
        known = ctx.known.get(address)
        if known is None:
            return None
        return "free" if known.alive else "skip"

    result: ProbeResult | None = None
    for n in range(2):
        if n == 0:
            outcome = ctx.pacer.acquire(ticket, ctx.deadline.expires_at - MIN_WINDOW, cost, verdict)
        else:
            if ctx.deadline.remaining() < SECOND_ATTEMPT_MIN:
                break
            outcome = ctx.pacer.acquire(ctx.pacer.ticket(), ctx.deadline.expires_at - SECOND_ATTEMPT_MIN,
                                        cost, verdict)
        if outcome in ("late", "skip"):
            if result is None:
                if outcome == "skip":
                    known = ctx.known.get(address)
                    why = f"skipped: {address} is already known {known.why if known else '?'}"
                else:
                    why = ("not sent: spacing for the routers' ICMP rate limit would have passed "
                           "the deadline")
                return ProbeResult(
                    address=address, kind=kind, port=port, result=ProbeOutcome.NOT_RUN, detail=why)
            break
        window = ctx.deadline.timeout(WINDOW)
        try:
            res = attempt(time.monotonic() + window)
        except OSError as exc:
            res = ProbeResult(
                address=address, kind=kind, port=port, result=ProbeOutcome.ERROR,
                detail=f"{type(exc).__name__}: {exc}")
        if res.answered:
            if outcome == "token":
                ctx.pacer.refund(cost)
            ctx.known[address] = Known(alive=True)
            ctx.pacer.notify()
        elif res.result in _PROVES_DEAD:
            ctx.known.setdefault(address, Known(alive=False, why=(
                f"{res.result} ({res.kind}{'' if res.port is None else '/' + str(res.port)}"
                f" from {res.reply_from or '?'})")))
            ctx.pacer.notify()
        if res.result is ProbeOutcome.SILENCE and window < ARP_FAILURE_S + 0.4:
            res = _with_detail(res, f"window {window:.1f} s: shorter than the ~3 s a router needs "
                                    "to report a failed ARP (raise --deadline)")
        if result is not None and res.result is ProbeOutcome.SILENCE:
            res = _with_detail(res, "silent on 2 attempts")
        result = res
        if res.result is not ProbeOutcome.SILENCE:
            break
    assert result is not None
    return result


def _with_detail(res: ProbeResult, more: str) -> ProbeResult:
    from dataclasses import replace

    return replace(res, detail=f"{res.detail}; {more}" if res.detail else more)


def _tcp_attempt(ctx: _Context, address: str, port: int, source: str | None, kind_prefix: str = ""):
    from toolkit.probe.tcp import connect_probe, syn_probe

    if ctx.raw and source:  # IPv4 and IPv6 (toolkit.probe.tcp.syn_probe6)
        kind = f"{kind_prefix}tcp" if kind_prefix else "tcp-syn"

        def run(end: float) -> ProbeResult:
            try:
                return syn_probe(address, port, source, end, kind=kind)
            except PermissionError:
                return connect_probe(address, port, end, kind=kind if kind_prefix else "tcp-connect")
        return run, kind, 1.0
    kind = f"{kind_prefix}tcp" if kind_prefix else "tcp-connect"
    return (lambda end: connect_probe(address, port, end, kind=kind)), kind, 2.0  # kernel resends at 1 s


def _echo_attempt(ctx: _Context, address: str, kind: str = "icmp-echo"):
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


def _control_probes(ctx: _Context, ctl: str, ports: Sequence[int]) -> list[tuple[str, Callable[[], ProbeResult]]]:
    """Control probes are not paced: the control answers for itself, no router ICMP."""
    out: list[tuple[str, Callable[[], ProbeResult]]] = []
    echo = _echo_attempt(ctx, ctl, kind="control-icmp")
    if echo is not None:
        out.append(("control-icmp", lambda: _guard(lambda: echo(ctx.end(WINDOW)), ctl, "control-icmp", None, ctx.deadline)))
    port = ports[0] if ports else CONTROL_TCP_PORT
    run, kind, _cost = _tcp_attempt(ctx, ctl, port, _source(ctl, _route(ctl)), kind_prefix="control-")
    out.append((kind, lambda: _guard(lambda: run(ctx.end(WINDOW)), ctl, kind, port, ctx.deadline)))
    return out


def _guard(fn: Callable[[], ProbeResult], address: str, kind: str, port: int | None,
           deadline: Deadline | None = None) -> ProbeResult:
    if deadline is not None and deadline.remaining() < MIN_WINDOW:
        return ProbeResult(
            address=address, kind=kind, port=port, result=ProbeOutcome.NOT_RUN,
            detail="not sent: the deadline had passed")
    try:
        return fn()
    except OSError as exc:
        return ProbeResult(
            address=address, kind=kind, port=port, result=ProbeOutcome.ERROR,
            detail=f"{type(exc).__name__}: {exc}")


def _with_control_ok(control: Sequence[ProbeResult]) -> tuple[ProbeResult, ...]:
    """A control is healthy if any of its probes answered: drop the redundant failures'
    weight by ordering the answering probe first."""
    return tuple(sorted(control, key=lambda c: not c.answered))


# ------------------------------------------------------------------------------ public

def probe_addresses(addresses: Sequence[str], ports: Sequence[int], deadline: Deadline, *,
                    control: bool = True, on_progress: Progress = None) -> tuple[AddressReport, ...]:
    """Probe every address concurrently under ``deadline``; one AddressReport each, in order.

    Per address: route; ARP when on-link (raw who-has with NET_RAW, else the neighbour
    table read after the other probes); ICMP echo; TCP to each port (raw SYN, else
    connect()); and, with ``control``, probes of the control address (shared by the
    addresses that have the same one). Packets that can draw router ICMP errors are paced
    in the order: first port of every address, echo of every address, remaining ports.
    Never raises for network outcomes; addresses must be IP literals (UsageError otherwise).
    """
    from toolkit.errors import UsageError

    addrs: list[str] = []
    for a in addresses:
        try:
            norm = str(ipaddress.ip_address(a))
        except ValueError:
            raise UsageError(f"not an IP address: {a!r}") from None
        if norm not in addrs:
            addrs.append(norm)
    ports = tuple(dict.fromkeys(int(p) for p in ports))
    say = on_progress or (lambda _m: None)
    ctx = _make_context(deadline, on_progress)

    routes = {a: _route(a) for a in addrs}
    sources = {a: _source(a, routes[a]) for a in addrs}
    controls = {a: control_address(a, routes[a]) if control else None for a in addrs}

    results: dict[tuple, ProbeResult] = {}
    lock = threading.Lock()
    threads: list[tuple[threading.Thread, tuple, str, str, int | None]] = []

    def start(key: tuple, fn: Callable[[], ProbeResult], address: str, kind: str, port: int | None) -> None:
        def body() -> None:
            res = _guard(fn, address, kind, port)
            with lock:
                results[key] = res

        t = threading.Thread(target=body, name=f"probe-{address}-{kind}-{port}", daemon=True)
        threads.append((t, key, address, kind, port))
        t.start()

    # target probes, in pacing priority order
    plan: list[tuple[tuple, str, int | None, Callable[[float], ProbeResult], float, str]] = []
    for a in addrs:
        if routes[a] is not None and routes[a].kind != "unicast" and routes[a].kind != "local":
            continue  # the kernel refuses at once: the route says it all
        if ports:
            run, kind, cost = _tcp_attempt(ctx, a, ports[0], sources[a])
            plan.append(((a, "tcp", ports[0]), a, ports[0], run, cost, kind))
    for a in addrs:
        if routes[a] is not None and routes[a].kind not in ("unicast", "local"):
            continue
        echo = _echo_attempt(ctx, a)
        if echo is not None:
            plan.append(((a, "echo", None), a, None, echo, 1.0, "icmp-echo"))
    for a in addrs:
        if routes[a] is not None and routes[a].kind not in ("unicast", "local"):
            continue
        for p in ports[1:]:
            run, kind, cost = _tcp_attempt(ctx, a, p, sources[a])
            plan.append(((a, "tcp", p), a, p, run, cost, kind))

    say(f"probing {', '.join(addrs)}" + (f" ports {', '.join(map(str, ports))}" if ports else "")
        + ("" if ctx.raw else " (no NET_RAW: connect() and unprivileged fallbacks)"))
    for key, a, port, run, cost, kind in plan:
        ticket = ctx.pacer.ticket()
        start(key, (lambda t=ticket, r=run, c=cost, a=a, k=kind, p=port:
                    _paced(ctx, t, c, r, a, k, p)), a, kind, port)

    # ARP (raw who-has) for on-link addresses: not paced (no router in between)
    for a in addrs:
        r = routes[a]
        if ctx.raw and r is not None and r.on_link and r.interface and ":" not in a and sources[a]:
            from toolkit.probe.arp import arp_probe

            start((a, "arp", None),
                  (lambda a=a, r=r: _guard(lambda: arp_probe(a, r.interface, sources[a], ctx.end(ARP_WINDOW)),
                                           a, "arp", None, ctx.deadline)), a, "arp", None)
        elif ctx.raw and r is not None and r.on_link and r.interface and ":" in a:
            from toolkit.probe.nd import nd_probe  # the IPv6 analogue: Neighbour Discovery

            start((a, "arp", None),
                  (lambda a=a, r=r: _guard(lambda: nd_probe(a, r.interface, sources[a], ctx.end(ARP_WINDOW)),
                                           a, "nd", None, ctx.deadline)), a, "nd", None)

    # control probes, one set per distinct control address
    for ctl in dict.fromkeys(c for c in controls.values() if c):
        for kind, fn in _control_probes(ctx, ctl, ports):
            start((ctl, kind, None), fn, ctl, kind, None)

    # Sliced joins: after SIGINT/SIGTERM the probes return within signals.TICK_S.
    signals.join([t for t, *_ in threads], time.monotonic() + deadline.remaining() + 0.5)

    with lock:
        done = dict(results)
    for t, key, a, kind, port in threads:
        if key not in done:
            done[key] = ProbeResult(
                address=a, kind=kind, port=port, result=ProbeOutcome.NOT_RUN,
                detail="did not finish by the deadline")

    reports = []
    for a in addrs:
        r = routes[a]
        probes = [done[k] for k in done if k[0] == a and k[1] in ("tcp", "echo", "arp")]
        if r is not None and r.on_link and not ctx.raw:
            from toolkit.probe.arp import neighbour_probe

            probes.append(neighbour_probe(a, r.interface))
        if r is not None and r.kind not in ("unicast", "local"):
            probes.append(ProbeResult(
                address=a, kind="tcp-connect" if not ctx.raw else "tcp-syn",
                port=ports[0] if ports else None, result=ProbeOutcome.NOT_RUN,
                detail=f"not sent: the route is {r.describe()}"))
        probes.sort(key=_probe_order)
        ctl = controls[a]
        control_res = _with_control_ok([done[k] for k in done if ctl and k[0] == ctl and k[1].startswith("control-")])
        lost = lost_without_raw(ctx.raw, ctx.ping, ctx.ping_why, bool(r and r.on_link), ":" in a)
        reports.append(AddressReport(
            address=a, route=r, probes=tuple(probes), control=control_res, lost=lost))
    return tuple(reports)


def _probe_order(p: ProbeResult) -> tuple:
    order = {"arp": 0, "nd": 0, "icmp-echo": 1, "tcp-syn": 2, "tcp-connect": 2}
    return (order.get(p.kind, 3), p.port or 0)


def resolve_target(target: str, deadline: Deadline) -> tuple[tuple[str, ...], str, str | None, float | None]:
    """(addresses, how, error, ms): an IP literal as is, a name through getaddrinfo (the
    system resolver, as the application sees it) in a thread bounded by the deadline."""
    try:
        return (str(ipaddress.ip_address(target)),), "address", None, None
    except ValueError:
        pass
    box: dict = {}

    def work() -> None:
        try:
            box["infos"] = socket.getaddrinfo(target, None, proto=socket.IPPROTO_TCP)
        except socket.gaierror as exc:
            box["error"] = f"getaddrinfo: {exc.strerror or exc} (EAI {exc.errno})"
            box["eai"] = exc.errno
        except (OSError, UnicodeError) as exc:
            box["error"] = f"getaddrinfo: {exc}"

    t0 = time.monotonic()
    t = threading.Thread(target=work, name="getaddrinfo", daemon=True)
    t.start()
    signals.join([t], time.monotonic() + deadline.timeout(max(1.0, deadline.remaining() / 2)), grace=0.0)
    ms = (time.monotonic() - t0) * 1000.0
    if t.is_alive():
        return (), "getaddrinfo", f"getaddrinfo did not return within {ms / 1000:.1f} s", ms
    if "error" in box:
        return (), "getaddrinfo", box["error"], ms
    addrs = tuple(dict.fromkeys(str(ipaddress.ip_address(i[4][0].split("%")[0])) for i in box["infos"]))
    return addrs, "getaddrinfo", None, ms


def reach(target: str, ports: Sequence[int], deadline: Deadline, *, control: bool = True,
          on_progress: Progress = None) -> ReachResult:
    """`podtriage reach`: resolve TARGET with the system resolver (or take the address)
    and probe every address. Never raises for network outcomes."""
    say = on_progress or (lambda _m: None)
    addrs, how, err, ms = resolve_target(target, deadline)
    if how == "getaddrinfo":
        say(f"{target} -> {', '.join(addrs) or err}")
    reports = probe_addresses(addrs, ports, deadline, control=control, on_progress=on_progress) if addrs else ()
    lost = tuple(dict.fromkeys(l for r in reports for l in r.lost))
    return ReachResult(
        target=target, addresses=reports, capabilities=capabilities(), lost=lost, ports=tuple(ports),
        resolved_from=how, resolve_error=err, resolve_ms=ms)
