"""Lookup identity: one ``Lookup`` per resolver call, from synthetic packet sequences that
follow what each resolver library sends (observed in the lab, see README "How resolver
libraries look on the wire"): glibc (new socket per candidate, A and AAAA together),
glibc ``single-request-reopen`` (A, then AAAA from a new socket), glibc ``use-vc`` (one TCP
connection per candidate), musl (like glibc, IDs close together), Go's pure resolver (one
socket per query, AAAA and A in parallel), and many threads of one process at once."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from toolkit.capture import synth as S
from toolkit.capture.analysis import Analyzer
from toolkit.capture.config import AnalyzerConfig
from toolkit.capture.dnswire import parse_dns

C, SRV = "10.244.1.10", "169.254.25.10"
NAME = "api.corp.example"
SEARCH = ("wxwork.svc.alpha.pm.k8s", "svc.alpha.pm.k8s", "alpha.pm.k8s")
CANDIDATES = [f"{NAME}.{d}" for d in SEARCH] + [NAME]
A, AAAA = 1, 28
RTT = 0.0003


def q(t, port, txid, name, qtype, transport="udp"):
    return (t, parse_dns(S.dns_query(txid, name, qtype), t, C, SRV, port, 53, transport))


def r(t, port, txid, name, qtype, transport="udp", **kw):
    return (t, parse_dns(S.dns_response(txid, name, qtype, **kw), t, SRV, C, 53, port, transport))


class Lib:
    """Packet timelines of one lookup per library; ports and IDs from a seeded RNG."""

    def __init__(self, seed: int = 1) -> None:
        self.rng = random.Random(seed)
        self.used_ports: set[int] = set()

    def port(self) -> int:
        while True:
            p = self.rng.randint(32768, 60999)
            if p not in self.used_ports:
                self.used_ports.add(p)
                return p

    def txid(self) -> int:
        return self.rng.randint(0, 0xFFFF)

    @staticmethod
    def _answer(t, port, txid, name, qtype, last, transport="udp"):
        if not last:
            return r(t, port, txid, name, qtype, transport, rcode=3)
        if qtype == A:
            return r(t, port, txid, name, qtype, transport, addresses=("192.168.50.77",))
        return r(t, port, txid, name, qtype, transport)  # NODATA for AAAA

    def glibc(self, t0: float, transport: str = "udp", candidates=CANDIDATES, nx_last=False) -> list:
        """A and AAAA back to back from one new socket per candidate (send_dg sendmmsg);
        ``use-vc``: the same two queries over one TCP connection per candidate."""
        out, t = [], t0
        for i, name in enumerate(candidates):
            last = i == len(candidates) - 1 and not nx_last
            port, ia, i6 = self.port(), self.txid(), self.txid()
            out += [q(t, port, ia, name, A, transport), q(t + 0.00002, port, i6, name, AAAA, transport)]
            out += [self._answer(t + RTT, port, ia, name, A, last, transport),
                    self._answer(t + RTT + 0.00005, port, i6, name, AAAA, last, transport)]
            t += RTT + 0.0001
        return out

    musl = glibc  # same shape on the wire: one socket per candidate, A and AAAA together

    def reopen(self, t0: float) -> list:
        """glibc ``options single-request-reopen``: A, its answer, then AAAA from a new socket."""
        out, t = [], t0
        for i, name in enumerate(CANDIDATES):
            last = i == len(CANDIDATES) - 1
            for qt in (A, AAAA):
                port, txid = self.port(), self.txid()
                out += [q(t, port, txid, name, qt), self._answer(t + RTT, port, txid, name, qt, last)]
                t += RTT + 0.00005
        return out

    def go(self, t0: float) -> list:
        """Go's pure resolver: per candidate, AAAA and A in parallel, each from its own socket."""
        out, t = [], t0
        for i, name in enumerate(CANDIDATES):
            last = i == len(CANDIDATES) - 1
            p6, pa, i6, ia = self.port(), self.port(), self.txid(), self.txid()
            # goroutine order varies: sometimes the AAAA answer is back before A is sent
            ta = t + (RTT * 1.5 if self.rng.random() < 0.5 else 0.00005)
            out += [q(t, p6, i6, name, AAAA), self._answer(t + RTT, p6, i6, name, AAAA, last),
                    q(ta, pa, ia, name, A), self._answer(ta + RTT, pa, ia, name, A, last)]
            t = max(t + RTT, ta + RTT) + 0.0001
        return out


def run(timelines, **cfg) -> list:
    events = sorted((ev for tl in timelines for ev in tl), key=lambda x: x[0])
    an = Analyzer(AnalyzerConfig(**cfg))
    for _, ev in events:
        an.feed(ev)
    an.finish(events[-1][0] + 0.01)
    return list(an.summary().lookups)


def assert_walks(lookups, n, *, queries=8, nx=6, retrans=0):
    mine = [lk for lk in lookups if lk.base == NAME or lk.answered_name == NAME]
    assert len(lookups) == n, [(lk.base, lk.queries, lk.candidates) for lk in lookups]
    assert len(mine) == n
    for lk in mine:
        assert (lk.queries, lk.nxdomain, lk.retransmissions) == (queries, nx, retrans), lk
        assert lk.outcome == "answered" and lk.answered_name == NAME
        assert lk.addresses == ("192.168.50.77",)
        assert lk.candidates == tuple(CANDIDATES)


@pytest.mark.parametrize("search", [(), SEARCH], ids=["search-unknown", "search-known"])
@pytest.mark.parametrize("lib", ["glibc", "musl", "reopen", "go"])
def test_one_lookup_per_library_call(lib, search):
    libs = Lib()
    assert_walks(run([getattr(libs, lib)(0.0)], search=search), 1)


def test_use_vc_over_tcp():
    libs = Lib()
    assert_walks(run([libs.glibc(0.0, transport="tcp")]), 1)


@pytest.mark.parametrize("search", [(), SEARCH], ids=["search-unknown", "search-known"])
def test_glibc_then_musl_a_moment_later_are_two_lookups(search):
    """The issue's report: getent, then a musl program 50 ms later, same name, same pod."""
    libs = Lib()
    assert_walks(run([libs.glibc(0.0), libs.musl(0.05)], search=search), 2)


@pytest.mark.parametrize("gap", [0.0, 0.00001, 0.0002, 0.002])
def test_back_to_back_same_name_no_search(gap):
    """A single-candidate name (FQDN) looked up twice in a row: two lookups of two queries."""
    libs = Lib()
    first = libs.glibc(0.0, candidates=[NAME])
    second = libs.glibc(first[-1][0] + gap, candidates=[NAME])
    lks = run([first, second])
    assert [(lk.queries, lk.outcome) for lk in lks] == [(2, "answered"), (2, "answered")]


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("search", [(), SEARCH], ids=["search-unknown", "search-known"])
def test_twenty_threads_at_once(seed, search):
    """Python's socket.getaddrinfo from 20 threads: 20 glibc walks interleaved."""
    libs = Lib(seed)
    rng = random.Random(seed)
    tls = [libs.glibc(rng.uniform(0, 0.002)) for _ in range(20)]
    assert_walks(run(tls, search=search), 20)


@pytest.mark.parametrize("seed", range(30))
@pytest.mark.parametrize("search", [(), SEARCH], ids=["search-unknown", "search-known"])
def test_five_mixed_clients_at_once(seed, search):
    libs = Lib(seed)
    rng = random.Random(seed)
    tls = [getattr(libs, lib)(rng.uniform(0, 0.001)) for lib in ("glibc", "musl", "reopen", "go", "go")]
    assert_walks(run(tls, search=search), 5)


def test_glibc_resends_on_the_same_socket_after_a_lost_aaaa():
    """glibc after its 5 s timeout sends the same query again, same socket, same ID: a
    retransmission of the lookup, not a new one."""
    out = [q(0.0, 40000, 10, NAME, A), q(0.00002, 40000, 11, NAME, AAAA),
           r(0.0003, 40000, 10, NAME, A, addresses=("192.168.50.77",)),
           q(5.0, 40000, 10, NAME, A), q(5.00002, 40000, 11, NAME, AAAA),
           r(5.0003, 40000, 10, NAME, A, addresses=("192.168.50.77",)), r(5.0004, 40000, 11, NAME, AAAA)]
    lks = run([out])
    assert len(lks) == 1, lks
    assert lks[0].queries == 2 and lks[0].retransmissions == 2 and lks[0].outcome == "answered"


def test_reopen_retry_on_a_new_socket_same_id_joins():
    """single-request-reopen: the unanswered query goes again from a new socket, same ID.
    The question was answered (by the retry): the lookup has no unanswered question."""
    out = [q(0.0, 40000, 10, NAME, A), r(0.0003, 40000, 10, NAME, A, addresses=("192.168.50.77",)),
           q(0.0004, 40002, 11, NAME, AAAA), q(5.0004, 40004, 11, NAME, AAAA),
           r(5.0008, 40004, 11, NAME, AAAA)]
    lks = run([out])
    assert len(lks) == 1, lks
    assert (lks[0].queries, lks[0].retransmissions, lks[0].unanswered) == (2, 1, 0)


def test_go_retry_new_socket_new_id_joins_after_the_timeout():
    out = [q(0.0, 40000, 10, NAME, AAAA), q(0.00005, 40002, 20, NAME, A),
           r(0.0003, 40002, 20, NAME, A, addresses=("192.168.50.77",)),
           q(5.0, 40004, 33, NAME, AAAA), r(5.0003, 40004, 33, NAME, AAAA)]
    lks = run([out])
    assert len(lks) == 1, lks
    assert (lks[0].queries, lks[0].retransmissions) == (2, 1)


def test_concurrent_same_question_with_new_id_is_a_new_lookup():
    """Two threads ask the same name 1 ms apart while the first is unanswered: two lookups."""
    out = [q(0.0, 40000, 10, NAME, A), q(0.00002, 40000, 11, NAME, AAAA),
           q(0.001, 40002, 12, NAME, A), q(0.00102, 40002, 13, NAME, AAAA)]
    out += [r(0.2 + i * 0.0001, p, t, NAME, qt, addresses=("192.168.50.77",) if qt == A else ())
            for i, (p, t, qt) in enumerate([(40000, 10, A), (40000, 11, AAAA), (40002, 12, A), (40002, 13, AAAA)])]
    lks = run([out])
    assert [(lk.queries, lk.retransmissions, lk.client_ports) for lk in lks] == [
        (2, 0, (40000,)), (2, 0, (40002,))]


def test_failed_walk_is_closed_to_a_new_first_candidate():
    """A walk that failed at its last candidate is over: the same walk again is a new lookup."""
    libs = Lib()
    first = libs.glibc(0.0, nx_last=True)
    lks = run([first, libs.glibc(first[-1][0] + 0.0001, nx_last=True)])
    assert [(lk.queries, lk.nxdomain, lk.outcome) for lk in lks] == [(8, 8, "NXDOMAIN")] * 2
    assert Counter(lk.candidates for lk in lks) == Counter({tuple(CANDIDATES): 2})


@pytest.mark.parametrize("gap", [0.00004, 0.007, 0.015])
def test_signature_when_the_aaaa_leaves_late(gap):
    """The flaky lab test: on a busy machine the AAAA of glibc's sendmmsg pair left the pod
    7 ms after the A (and after the A's answer). glibc resends after 5 s from the A's send,
    which is then less than 5 s after the AAAA's: still the 5-second signature."""
    out = [q(0.0, 40000, 10, CANDIDATES[0], A), r(0.0005, 40000, 10, CANDIDATES[0], A, rcode=3),
           q(gap, 40000, 11, CANDIDATES[0], AAAA),
           q(5.0001, 40000, 10, CANDIDATES[0], A), r(5.0006, 40000, 10, CANDIDATES[0], A, rcode=3),
           q(5.004, 40000, 11, CANDIDATES[0], AAAA)]
    events = sorted(out, key=lambda x: x[0])
    an = Analyzer(AnalyzerConfig(search=SEARCH))
    for _, ev in events:
        an.feed(ev)
    an.finish(16.0)
    s = an.summary()
    assert s.signature_hits == 1 and s.signature_lost_types == {"AAAA": 1}
    assert s.unanswered_explained == s.unanswered
    assert s.lookups_total == 1


def test_equal_ids_from_another_socket_soon_after_are_a_new_lookup():
    """musl takes IDs from the clock: another process's walk may reuse an ID of a finished
    walk 100 ms later. Not a retry (that would come after the timeout): a new lookup."""
    libs = Lib(7)
    first = libs.glibc(0.0)
    second = []
    for t, ev in libs.glibc(0.1):
        same = [e for _, e in first if e.qname == ev.qname and e.qtype == ev.qtype][0]
        raw = (S.dns_response if ev.flags & 0x8000 else S.dns_query)
        kw = {"rcode": ev.flags & 0xF, "addresses": ev.addresses()} if ev.flags & 0x8000 else {}
        wire = raw(same.txid, ev.qname, ev.qtype, **kw)
        second.append((t, parse_dns(wire, t, ev.src, ev.dst, ev.sport, ev.dport, "udp")))
    assert_walks(run([first, second]), 2)


def test_latency_stats_take_a_negative_latency_as_zero():
    """Kernel timestamps per CPU: an answer stamped before its query must not crash the
    histogram (found by the 40k packets/s replay: math domain error)."""
    from toolkit.capture.latency import LatencyStats

    st = LatencyStats(exact_cap=0)
    for ms in (-0.004, -5.0, 0.0, 1.0):
        st.add(ms)
    assert st.count == 4 and st.percentile(0.5) is not None and st.max == 1.0
