"""When the pod's nameservers give no answer for the name: ask the servers behind them, and
ask the pod's nameserver once more, patiently.

A cache whose upstream is silent is alive, but answers only when its forward gives up: node-
cache's CoreDNS forwards to the kube-dns Service, CoreDNS forwards to the upstream, and each
``forward`` waits its own timeouts before it answers SERVFAIL (measured in the lab: NodeLocal
DNSCache answers SERVFAIL after 6 s when the upstream drops every query, after 4 s when only
TCP to it is dropped), longer than diagnose's per-query timeout. One more query with a longer
timeout tells that cache from a dead one; the servers behind it (the Corefile's forward
target, --server, KUBE_DNS_SERVICE_HOST) tell which hop fails.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from toolkit.deadline import Deadline
from toolkit.dns.query import QueryError, QueryResult, Transport, query
from toolkit.dns.walk import PathResult, Server, ServerRole
from toolkit.triage.resolve import ResolveResult

# The longest a patient query waits: beyond CoreDNS's forward deadline (5 s) plus a hop.
PATIENT_S = 8.0
# ... and the least worth asking with (below it nothing settles that the walk did not).
PATIENT_MIN_S = 3.0
# Left for the report after it.
MARGIN_S = 0.4


def _pod_paths(res: ResolveResult) -> list[PathResult]:
    return [p for p in res.paths if p.role == ServerRole.RESOLV_CONF]


def pod_unanswered(res: ResolveResult) -> bool:
    """No pod nameserver answered the name, and each one ended without a DNS answer (silence,
    refusal, unreachable), at once or part-way through the search list."""
    pod = _pod_paths(res)
    return bool(pod) and all(p.no_dns_answer and p.outcome is not QueryError.DEADLINE for p in pod)


def ask_behind(res: ResolveResult, behind_servers: Sequence[Server], deadline: Deadline, qt: float,
               say: Callable[[str], None]) -> tuple[tuple[PathResult, ...], QueryResult | None]:
    """(the walks of the servers behind the pod's nameservers, the patient query) when the pod's
    nameservers gave no answer. The patient query only where it settles something: when the
    pod's nameservers answered nothing at all (alive or dead is the question; a cache that
    answered the cluster's candidates is alive already), and when nobody behind is known (a
    server behind says more, and its UDP answer fills CoreDNS's cache, which would answer the
    patient query's retry, node-cache's forward asking again, and hide what failed)."""
    if not pod_unanswered(res):
        return (), None
    cands = [s for s in behind_servers if s.address not in {p.server for p in res.paths}]
    env_ip = _kube_dns_env()
    if env_ip and env_ip not in {s.address for s in cands} | {p.server for p in res.paths}:
        cands.append(Server(env_ip, ServerRole.SERVER))
    if cands:
        return _walk_behind(res, cands, deadline, qt, say), None
    if any(q.answered for p in _pod_paths(res) for q in p.queries):
        return (), None
    return (), _ask_patiently(res, deadline, qt, say)


def _walk_behind(res: ResolveResult, cands: Sequence[Server], deadline: Deadline, qt: float,
                 say: Callable[[str], None]) -> tuple[PathResult, ...]:
    from toolkit.dns.walk import walk_all

    say(f"the pod's nameservers do not answer; asking the server(s) behind them: "
        f"{', '.join(s.address for s in cands)}")
    # TCP first, then UDP: a UDP answer fills CoreDNS's cache, and a TCP question asked after
    # it is answered from there, hiding a TCP block between CoreDNS and its upstream (what a
    # force_tcp cache in front of it meets: toolkit.triage.pathrules).
    tcp = walk_all(cands, (Transport.TCP,), res.candidates, ("A",), deadline, qt)
    udp = walk_all(cands, (Transport.UDP,), res.candidates, ("A",), deadline, qt)
    return tuple(p for pair in zip(udp, tcp, strict=True) for p in pair)


def _ask_patiently(res: ResolveResult, deadline: Deadline, qt: float,
                   say: Callable[[str], None]) -> QueryResult | None:
    """The first pod nameserver's first unanswered question (timed out on UDP, else TCP),
    asked once more with a timeout long enough for its forwarders to give up."""
    timed_out = [q for p in sorted(_pod_paths(res), key=lambda p: p.transport != Transport.UDP)
                 for q in p.queries if q.error is QueryError.TIMEOUT]
    if not timed_out:
        return None
    wait = deadline.timeout(PATIENT_S) - MARGIN_S
    if wait < max(PATIENT_MIN_S, qt + 1.0):
        return None
    q = timed_out[0]
    say(f"{q.server} did not answer {q.qname} {q.qtype} within {qt:.1f} s; asking once more, "
        f"waiting up to {wait:.1f} s")
    return query(q.server, q.qname, q.qtype, q.transport, wait, port=q.port)


def _kube_dns_env() -> str | None:
    # Kubernetes injects *_SERVICE_HOST for Services of the pod's own namespace only, so
    # this is set for pods in kube-system; elsewhere --server or --corefile tell it.
    return os.environ.get("KUBE_DNS_SERVICE_HOST") or None
