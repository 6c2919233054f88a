"""Build diagnose Evidence from keyword arguments, with real AddressReports whose state is
derived from probes (toolkit.probe.model.derive_state), never a state string set by hand."""

from __future__ import annotations

from toolkit.probe.model import AddressReport, AddressState, ProbeKind, ProbeOutcome as O, ProbeResult
from toolkit.sysinfo.routes import Route, RouteKind
from toolkit.triage.evidence import Evidence

from tests.unit.test_resolve_findings import CANDS, failed, q, result, walked  # noqa: F401

GW = "10.244.1.1"


def _p(address, kind, result, port=None, frm=None, t=None, c=None):
    return ProbeResult(
        address=address, kind=ProbeKind(kind), port=port, result=result, reply_from=frm, icmp_type=t, icmp_code=c,
        rtt_ms=1.0, detail="", privileged=kind != "tcp-connect")


def addr(address: str, state: str, *, port: int = 80, control: bool = True) -> AddressReport:
    """An AddressReport whose probes make ``state`` (AddressState word) true."""
    s = AddressState(state)
    probes = {
        AddressState.UP: (_p(address, "icmp-echo", O.REPLY, frm=address), _p(address, "tcp-syn", O.OPEN, port, address)),
        AddressState.PORT_CLOSED: (_p(address, "icmp-echo", O.REPLY, frm=address),
                                   _p(address, "tcp-syn", O.CLOSED, port, address)),
        AddressState.FILTERED: (_p(address, "icmp-echo", O.ADMIN_PROHIBITED, frm=GW, t=3, c=13),
                                _p(address, "tcp-syn", O.ADMIN_PROHIBITED, port, GW, 3, 13)),
        AddressState.HOST_UNREACHABLE: (_p(address, "icmp-echo", O.HOST_UNREACHABLE, frm=GW, t=3, c=1),
                                        _p(address, "tcp-syn", O.HOST_UNREACHABLE, port, GW, 3, 1)),
        AddressState.SILENT: (_p(address, "icmp-echo", O.SILENCE), _p(address, "tcp-syn", O.SILENCE, port)),
        AddressState.ROUTING: (_p(address, "tcp-syn", O.NET_UNREACHABLE, port, GW, 3, 0),),
        AddressState.UNKNOWN: (_p(address, "tcp-syn", O.NOT_RUN, port),),
    }[s]
    ctl = (_p(GW, "control-icmp", O.REPLY, frm=GW),) if control else ()
    rep = AddressReport(
        address=address, route=Route(destination=address, interface="eth0", gateway=GW, source="10.244.1.10", on_link=False, kind=RouteKind.UNICAST), probes=probes,
        control=ctl)
    assert rep.state is s, (rep.state, s)
    return rep


def evidence(res, *addrs: AddressReport, ports=(80,), ports_given=True, name="api.corp.example", **kw) -> Evidence:
    return Evidence(name=name, resolve=res, probes=tuple(addrs), ports=tuple(ports),
                    ports_given=ports_given, **kw)
