"""Probe results and their pure classification (no I/O here: unit-tested from recorded inputs).

Classification (dns-failure-catalog.md section 3):

=============================================  ==================  ==================
observation                                     ProbeResult.result  meaning
=============================================  ==================  ==================
SYN-ACK / connect() succeeds                    open                host up, port open
RST / ECONNREFUSED / ICMP 3/3 (TCP)             closed              host up, port closed
ICMP echo reply / ARP reply / neighbour alive   reply               host up
ICMP 3/1, 3/7 (from the last router)            host-unreachable    nobody holds it
ICMP 3/0, 3/6                                   net-unreachable     routing
ICMP 11/x                                       ttl-exceeded        routing (loop)
ICMP 3/9, 3/10, 3/13                            admin-prohibited    policy
nothing within the window                       silence             filtered or dead
=============================================  ==================  ==================
"""

from __future__ import annotations

import errno
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from toolkit.sockerr import NetError
from toolkit.sysinfo.routes import Route
from toolkit.sysinfo.routes import RouteKind


class ProbeKind(StrEnum):
    """ProbeResult.kind: what was sent."""

    ARP = "arp"
    ND = "nd"  # IPv6 Neighbour Discovery (RFC 4861), the IPv6 analogue of ARP
    ICMP_ECHO = "icmp-echo"
    TCP_SYN = "tcp-syn"
    TCP_CONNECT = "tcp-connect"
    UDP = "udp"
    CONTROL_ICMP = "control-icmp"
    CONTROL_TCP = "control-tcp"


class ProbeOutcome(StrEnum):
    """ProbeResult.result: what came back for one probe (the table above). ``silence`` is a
    probe's outcome; ``silent`` (AddressState) is an address's state: two layers, two enums."""

    OPEN = "open"
    CLOSED = "closed"
    REPLY = "reply"
    HOST_UNREACHABLE = "host-unreachable"
    NET_UNREACHABLE = "net-unreachable"
    ADMIN_PROHIBITED = "admin-prohibited"
    TTL_EXCEEDED = "ttl-exceeded"
    SILENCE = "silence"
    ERROR = "error"
    NOT_RUN = "not-run"


class AddressState(StrEnum):
    """AddressReport.state (derive_state), shared with triage. ``not-probed`` is triage's
    word for an answered address that no probe looked at: never evidence either way."""

    UP = "up"
    PORT_CLOSED = "port-closed"
    HOST_UNREACHABLE = "host-unreachable"
    FILTERED = "filtered"
    ROUTING = "routing"
    SILENT = "silent"
    UNKNOWN = "unknown"
    NOT_PROBED = "not-probed"


class ResolvedFrom(StrEnum):
    """ReachResult.resolved_from: how TARGET became addresses."""

    ADDRESS = "address"  # TARGET was an IP literal
    GETADDRINFO = "getaddrinfo"  # the system resolver, as the application sees it


KINDS = tuple(ProbeKind)
TCP_KINDS = frozenset({ProbeKind.TCP_SYN, ProbeKind.TCP_CONNECT})
CONTROL_KINDS = frozenset({ProbeKind.CONTROL_ICMP, ProbeKind.CONTROL_TCP})
NEIGHBOUR_KINDS = frozenset({ProbeKind.ARP, ProbeKind.ND})  # link-layer address resolution
RESULTS = tuple(ProbeOutcome)
ANSWERED = frozenset({ProbeOutcome.OPEN, ProbeOutcome.CLOSED, ProbeOutcome.REPLY})  # the target itself answered
ROUTING = frozenset({ProbeOutcome.NET_UNREACHABLE, ProbeOutcome.TTL_EXCEEDED})
STATES = tuple(s for s in AddressState if s is not AddressState.NOT_PROBED)

NET_RAW_HINT = ("needs NET_RAW, which this process does not have: attach with "
                "`kubectl debug --profile=netadmin` (or --cap-add NET_RAW)")


@dataclass(frozen=True, kw_only=True)
class ProbeResult:
    """One probe of one address (or of a control address) and what came back.

    ``reply_from`` is who answered: the host itself, or the router that sent the ICMP
    error (for host-unreachable: the last router, whose ARP/ND failed).
    ``privileged``: a raw socket was used (NET_RAW); False for connect()/ping sockets and
    neighbour-table reads.
    """

    address: str
    kind: ProbeKind
    port: int | None
    result: ProbeOutcome
    reply_from: str | None = None
    icmp_type: int | None = None
    icmp_code: int | None = None
    rtt_ms: float | None = None
    detail: str = ""
    privileged: bool = False

    def __post_init__(self) -> None:
        # A bare word is a caller that skipped the enum (mypy catches typed callers; this
        # catches the rest): fail at once, never convert. Words read from a file are turned
        # into members where they are read (ProbeKind(word)).
        if not isinstance(self.kind, ProbeKind):
            raise TypeError(f"ProbeResult.kind must be a ProbeKind, not {self.kind!r}")
        if not isinstance(self.result, ProbeOutcome):
            raise TypeError(f"ProbeResult.result must be a ProbeOutcome, not {self.result!r}")

    @property
    def answered(self) -> bool:
        """The target itself answered (SYN-ACK, RST, echo reply, ARP reply)."""
        return self.result in ANSWERED

    @property
    def is_control(self) -> bool:
        """A probe of the control address (the gateway or a live neighbour), not the target."""
        return self.kind in CONTROL_KINDS

    def describe(self) -> str:
        """One line for evidence: "ADDRESS KIND/PORT: RESULT (ICMP t/c) from WHO in N ms"."""
        what = self.kind + (f"/{self.port}" if self.port is not None else "")
        extra = ""
        if self.icmp_type is not None:
            extra = f" (ICMP {self.icmp_type}/{self.icmp_code})"
        who = f" from {self.reply_from}" if self.reply_from and self.reply_from != self.address else ""
        ms = f" in {self.rtt_ms:.0f} ms" if self.rtt_ms is not None else ""
        return f"{self.address} {what}: {self.result}{extra}{who}{ms}"


@dataclass(frozen=True, kw_only=True)
class ProbeSpec:
    """Which probe this is: what was sent (``kind``) to which address and port. Every
    result the probe ends with carries these three, so the probes build results from it."""

    address: str
    kind: ProbeKind
    port: int | None = None

    def result(self, result: ProbeOutcome, *, reply_from: str | None = None, icmp_type: int | None = None,
               icmp_code: int | None = None, rtt_ms: float | None = None, detail: str = "",
               privileged: bool = False) -> ProbeResult:
        """This probe's result."""
        return ProbeResult(address=self.address, kind=self.kind, port=self.port, result=result,
                           reply_from=reply_from, icmp_type=icmp_type, icmp_code=icmp_code, rtt_ms=rtt_ms,
                           detail=detail, privileged=privileged)

    def not_run(self, detail: str) -> ProbeResult:
        """The probe observed nothing (not sent, cut short): never evidence either way."""
        return self.result(ProbeOutcome.NOT_RUN, detail=detail)

    def error(self, exc: OSError) -> ProbeResult:
        """The probe could not be made (a socket call failed)."""
        return self.result(ProbeOutcome.ERROR, detail=f"{type(exc).__name__}: {exc}")


@dataclass(frozen=True, kw_only=True)
class AddressReport:
    """Everything probed for one address: its route, the probes, and the control probes
    (the gateway, or another live address on the same link) that tell "path fine, host
    absent" from "path broken".

    ``lost``: what could not be observed without NET_RAW (or a ping socket) for this address.
    """

    address: str
    route: Route | None
    probes: tuple[ProbeResult, ...]
    control: tuple[ProbeResult, ...] = ()
    lost: tuple[str, ...] = ()

    __json_properties__ = ("state", "alive", "control_ok", "summary", "open_ports", "closed_ports")

    @property
    def state(self) -> AddressState:
        """The address's state from its probes (derive_state)."""
        return derive_state(self.route, self.probes, self.control)

    @property
    def control_ok(self) -> bool | None:
        """True: a control address answered; False: every control probe failed; None: none ran."""
        return control_health(self.control)

    @property
    def alive(self) -> bool | None:
        """True: the host itself answered; False: proven absent; None: cannot tell."""
        if any(p.answered for p in self.probes):
            return True
        if self.state is AddressState.HOST_UNREACHABLE:
            return False
        return None

    @property
    def observed(self) -> bool:
        """The address itself was observed: it answered, a router reported on it (an ICMP
        error), or our own ARP/ND went unanswered on its link, which is what a router's
        host-unreachable reports too (its resolution failed), seen first-hand."""
        return any(p.answered or p.reply_from or (p.kind in NEIGHBOUR_KINDS and p.result is ProbeOutcome.SILENCE
                                                  and p.privileged) for p in self.probes)

    @property
    def open_ports(self) -> tuple[int, ...]:
        """Ports that answered SYN-ACK."""
        return _ports(self.probes, ProbeOutcome.OPEN)

    @property
    def closed_ports(self) -> tuple[int, ...]:
        """Ports that were refused (RST, ICMP port-unreachable)."""
        return _ports(self.probes, ProbeOutcome.CLOSED)

    @property
    def host_unreachable_from(self) -> str | None:
        """The router that said ICMP host-unreachable (its ARP/ND for the address failed)."""
        for p in self.probes:
            if p.result is ProbeOutcome.HOST_UNREACHABLE and p.reply_from:
                return p.reply_from
        return None

    @property
    def summary(self) -> str:
        """The state in one sentence (summarize)."""
        return summarize(self)


@dataclass(frozen=True, kw_only=True)
class ReachResult:
    """`podtriage reach`: the target, how it resolved, and one AddressReport per address.

    ``capabilities``: the relevant capabilities this process holds (e.g. ("NET_RAW",)).
    ``lost``: observations lost for want of NET_RAW / a ping socket (deduplicated).
    ``resolve_error``: why TARGET did not resolve (None when it did or was an address).
    """

    target: str
    addresses: tuple[AddressReport, ...]
    capabilities: tuple[str, ...]
    lost: tuple[str, ...]
    ports: tuple[int, ...] = ()
    resolved_from: ResolvedFrom
    resolve_error: str | None = None
    resolve_ms: float | None = None


# ------------------------------------------------------------------------- classification

def result_from_icmp(icmp_type: int, code: int, *, tcp: bool, v6: bool = False) -> ProbeOutcome:
    """An ICMP(v6) error about our probe -> ProbeResult.result (toolkit.sockerr's table).

    For TCP probes a port- or protocol-unreachable means the host is up and the port closed;
    for an echo it is no statement about the host."""
    from toolkit.sockerr import IcmpOrigin, classify_icmp

    kind = classify_icmp(IcmpOrigin.ICMP6 if v6 else IcmpOrigin.ICMP, icmp_type, code)
    if kind is NetError.PROTOCOL_UNREACHABLE:
        kind = NetError.PORT_UNREACHABLE
    result = result_from_kind(kind)
    if result is ProbeOutcome.CLOSED and not tcp:
        return ProbeOutcome.ERROR
    return result


_FROM_NET_ERROR = {
    NetError.PORT_UNREACHABLE: ProbeOutcome.CLOSED, NetError.HOST_UNREACHABLE: ProbeOutcome.HOST_UNREACHABLE,
    NetError.NET_UNREACHABLE: ProbeOutcome.NET_UNREACHABLE, NetError.ADMIN_PROHIBITED: ProbeOutcome.ADMIN_PROHIBITED,
    NetError.TTL_EXCEEDED: ProbeOutcome.TTL_EXCEEDED, NetError.RESET: ProbeOutcome.CLOSED,
    NetError.TIMEOUT: ProbeOutcome.SILENCE}


def result_from_kind(kind: NetError) -> ProbeOutcome:
    """toolkit.sockerr classification (IcmpError.kind) -> ProbeResult.result."""
    return _FROM_NET_ERROR.get(kind, ProbeOutcome.ERROR)


def result_from_errno(err: int) -> ProbeOutcome:
    """A bare connect() errno (no ICMP details) -> ProbeResult.result.

    EHOSTUNREACH is ambiguous: the kernel gives it for ICMP host-unreachable *and* for
    admin-prohibited (3/9, 3/10, 3/13); callers say so in ``detail``."""
    return {
        errno.ECONNREFUSED: ProbeOutcome.CLOSED,
        errno.ECONNRESET: ProbeOutcome.CLOSED,
        errno.EHOSTUNREACH: ProbeOutcome.HOST_UNREACHABLE,
        errno.ENETUNREACH: ProbeOutcome.NET_UNREACHABLE,
        errno.EACCES: ProbeOutcome.ADMIN_PROHIBITED,
        errno.EPERM: ProbeOutcome.ADMIN_PROHIBITED,
        errno.ETIMEDOUT: ProbeOutcome.SILENCE,
    }.get(err, ProbeOutcome.ERROR)


def control_health(control: Sequence[ProbeResult]) -> bool | None:
    """True: a control probe that ran got an answer; False: every one that ran failed;
    None: none ran (no control, or only errors)."""
    ran = [c for c in control if c.result not in (ProbeOutcome.NOT_RUN, ProbeOutcome.ERROR)]
    if not ran:
        return None
    return any(c.answered for c in ran)


def derive_state(route: Route | None, probes: Sequence[ProbeResult],
                 control: Sequence[ProbeResult] = ()) -> AddressState:
    """The address's state from its probes, strongest evidence first.

    up            a TCP port answered SYN-ACK (or, with no TCP probe, echo/ARP replied)
    port-closed   the host answered, every probed port refused (RST / port-unreachable)
    filtered      ICMP admin-prohibited, or the host answers ping/ARP while the port is silent
    host-unreachable  ICMP host-unreachable (the last router's ARP/ND failed), or no ARP reply
                  on-link while the control answers
    routing       net-unreachable / TTL exceeded, no or an unreachable route, or silence
                  everywhere with the control failing too (path broken)
    silent        nothing answered (the control answered, or there was none)
    unknown       nothing could be observed (not run, errors only)
    """
    if route is not None and route.kind in (RouteKind.UNREACHABLE, RouteKind.BLACKHOLE, RouteKind.THROW):
        return AddressState.ROUTING
    if route is not None and route.kind is RouteKind.PROHIBIT:
        return AddressState.FILTERED
    results = [p.result for p in probes]
    tcp = [p for p in probes if p.kind in TCP_KINDS]
    if any(p.result is ProbeOutcome.OPEN for p in tcp):
        return AddressState.UP
    if (tcp and any(p.result is ProbeOutcome.CLOSED for p in tcp)
            and not any(p.result is ProbeOutcome.ADMIN_PROHIBITED for p in tcp)):
        return AddressState.PORT_CLOSED
    if ProbeOutcome.ADMIN_PROHIBITED in results:
        return AddressState.FILTERED
    if ProbeOutcome.HOST_UNREACHABLE in results:
        return AddressState.HOST_UNREACHABLE
    if any(r in ROUTING for r in results):
        return AddressState.ROUTING
    host_replied = any(p.result is ProbeOutcome.REPLY for p in probes)
    if host_replied:
        if not tcp or all(p.result in (ProbeOutcome.NOT_RUN, ProbeOutcome.ERROR) for p in tcp):
            return AddressState.UP
        return AddressState.FILTERED  # the host is there, the port does not answer
    ran = [p for p in probes if p.result not in (ProbeOutcome.NOT_RUN, ProbeOutcome.ERROR)]
    if not ran:
        return AddressState.UNKNOWN
    # every probe that ran met silence
    health = control_health(control)
    arp = [p for p in probes if p.kind in NEIGHBOUR_KINDS and p.result is ProbeOutcome.SILENCE]
    if arp and health:
        return AddressState.HOST_UNREACHABLE  # on-link, no ARP answer, the link itself works
    if health is False:
        return AddressState.ROUTING
    return AddressState.SILENT


def summarize(rep: AddressReport) -> str:
    """AddressReport.summary: the address's state in one sentence, naming the evidence."""
    state = rep.state
    addr = rep.address
    route = rep.route
    ctl = _control_words(rep.control)
    if state is AddressState.UP:
        ports = rep.open_ports
        if ports:
            closed = rep.closed_ports
            more = f"; port {', '.join(map(str, closed))} closed" if closed else ""
            return f"{addr} is up: port {', '.join(map(str, ports))} open{more}"
        return f"{addr} is up (answers {'/'.join(sorted({p.kind for p in rep.probes if p.answered}))})"
    if state is AddressState.PORT_CLOSED:
        return f"{addr} is up but port {', '.join(map(str, rep.closed_ports))} refused (RST / port-unreachable)"
    if state is AddressState.HOST_UNREACHABLE:
        who = rep.host_unreachable_from
        if who:
            return (f"{addr}: ICMP host-unreachable from {who}: its ARP/ND for the address failed, "
                    f"nobody holds {addr} on that link{ctl}")
        link = route.interface if route else "the link"
        unanswered = _unanswered_solicitation(rep)
        if unanswered:
            return f"{addr}: no {unanswered} on {link}: nobody holds the address{ctl}"
        return f"{addr}: host unreachable ({_first_detail(rep, ProbeOutcome.HOST_UNREACHABLE)}){ctl}"
    if state is AddressState.FILTERED:
        p = next((p for p in rep.probes if p.result is ProbeOutcome.ADMIN_PROHIBITED), None)
        if p is not None:
            v6 = ":" in addr
            # ICMPv6 1/6 (RFC 4443 3.1): a reject route, a policy all the same
            what = "reject route to destination" if v6 and p.icmp_type == 1 and p.icmp_code == 6 \
                else "administratively prohibited"
            return (f"{addr}: {what} (ICMP{'v6' if v6 else ''} {p.icmp_type}/{p.icmp_code}) "
                    f"from {p.reply_from or '?'}: a firewall rejects the traffic")
        if route is not None and route.kind is RouteKind.PROHIBIT:
            return f"{addr}: the local routing table prohibits it ({route.detail or 'prohibit route'})"
        return f"{addr} answers ping/ARP but the TCP port stays silent: filtered"
    if state is AddressState.ROUTING:
        if route is not None and route.kind is not RouteKind.UNICAST:
            return f"{addr}: no usable route ({route.describe()})"
        p = next((p for p in rep.probes if p.result in ROUTING), None)
        if p is not None:
            return f"{addr}: {p.result} from {p.reply_from or '?'}: a routing problem on the path"
        return f"{addr}: silence, and the control probe failed too: the path is broken{ctl}"
    if state is AddressState.SILENT:
        if rep.control_ok:
            return f"{addr}: no answer at all while the control answers: filtered (silent drop) or dead{ctl}"
        unanswered = _unanswered_solicitation(rep)
        if unanswered and not rep.control and route is not None and route.interface:
            # On-link: our ARP/ND went unanswered, but with no live neighbour on that link to
            # probe there is no telling an absent host from a link that carries nothing
            # (derive_state says host-unreachable only when the control answers).
            return (f"{addr}: no {unanswered} on {route.interface}, and no live neighbour there to check the "
                    f"link with: nobody holds the address, or the link itself is down")
        return f"{addr}: no answer at all, no control to compare with: filtered, dead, or the path is broken"
    return f"{addr}: could not be probed ({_first_detail(rep, None) or 'no probe ran'})"


def _unanswered_solicitation(rep: AddressReport) -> str | None:
    """What our own link-layer resolution of the address heard nothing back to, if it did."""
    for kind, what in ((ProbeKind.ND, "neighbor advertisement"), (ProbeKind.ARP, "ARP reply")):
        if any(p.kind is kind and p.result is ProbeOutcome.SILENCE for p in rep.probes):
            return what
    return None


def _control_words(control: Sequence[ProbeResult]) -> str:
    ok = [c for c in control if c.answered]
    if ok:
        return f"; control {ok[0].address} answers ({ok[0].kind})"
    ran = [c for c in control if c.result is not ProbeOutcome.NOT_RUN]
    if ran:
        return f"; control {ran[0].address} does not answer either ({ran[0].result})"
    return ""


def _first_detail(rep: AddressReport, result: ProbeOutcome | None) -> str:
    for p in rep.probes:
        if (result is None or p.result is result) and p.detail:
            return p.detail
    return ""


def _ports(probes: Sequence[ProbeResult], result: ProbeOutcome) -> tuple[int, ...]:
    return tuple(sorted({p.port for p in probes
                         if p.kind in TCP_KINDS and p.port is not None and p.result is result}))
