"""Issue 24 item 2: lookup identity covers the orders resolvers really use, and is bounded in
time by the resolver's own worst case.

Synthetic timelines (toolkit.capture.synth, the pattern of test_capture_lookups.py): A/AAAA
in parallel from one socket per candidate (glibc, musl), AAAA first through the whole search
list then A (older glibc, Windows), A first then AAAA, one socket per query (Go), and the
same question from two sockets 8 s apart (past any resolver's wait for one try: two
lookups). Where a verdict is the point it is asserted as a string: ``indeterminate`` exits
with a code that differs between branches (1 here, 5 after the merge), the verdict does not.
"""

from __future__ import annotations

import pytest

from toolkit.capture.analysis import Analyzer
from toolkit.capture.config import AnalyzerConfig
from toolkit.capture.records import CaptureMode, CaptureResult
from toolkit.capture.report import capture_report
from tests.unit.test_capture_lookups import A, AAAA, NAME, q, r

SUFFIX = "corp.example"
CAND = f"{NAME}.{SUFFIX}"
ADDR = ("192.168.50.77",)


def analyze(timeline: list, **cfg) -> CaptureResult:
    events = sorted(timeline, key=lambda x: x[0])
    an = Analyzer(AnalyzerConfig(**cfg))
    for _, ev in events:
        an.feed(ev)
    an.finish(events[-1][0] + 0.01)
    return CaptureResult(mode=CaptureMode.READ, source="synthetic", packets=len(events), summary=an.summary(),
                         decoder={})


def lookups(timeline: list, **cfg) -> list:
    return list(analyze(timeline, **cfg).summary.lookups)


def test_a_aaaa_parallel_one_socket_per_candidate():
    """glibc/musl: A and AAAA together from one new socket per candidate."""
    out = [q(0.0, 40000, 10, CAND, A), q(0.00002, 40000, 11, CAND, AAAA),
           r(0.0003, 40000, 10, CAND, A, rcode=3), r(0.00031, 40000, 11, CAND, AAAA, rcode=3),
           q(0.0005, 40002, 12, NAME, A), q(0.00052, 40002, 13, NAME, AAAA),
           r(0.0008, 40002, 12, NAME, A, addresses=ADDR), r(0.00081, 40002, 13, NAME, AAAA)]
    (lk,) = lookups(out)
    assert lk.candidates == (CAND, NAME) and lk.queries == 4 and lk.outcome == "answered"


def aaaa_first(rcode_suffix: int = 3, port_per_query: bool = False) -> list:
    """AAAA ``name`` (NODATA), AAAA ``name.suffix`` (``rcode_suffix``), then the A walk from
    the first candidate: A ``name`` answered (the walk stops there)."""
    ports = iter(range(40000, 40010)) if port_per_query else iter([40000] * 10)
    p1, p2, p3 = next(ports), next(ports), next(ports)
    return [q(0.0, p1, 10, NAME, AAAA), r(0.0003, p1, 10, NAME, AAAA),
            q(0.0004, p2, 11, CAND, AAAA), r(0.0007, p2, 11, CAND, AAAA, rcode=rcode_suffix),
            q(0.00072, p3, 12, NAME, A), r(0.001, p3, 12, NAME, A, addresses=ADDR)]


KNOWN = pytest.mark.parametrize("search", [(), (SUFFIX,)], ids=["search-unknown", "search-known"])


@KNOWN
def test_aaaa_first_the_a_query_rejoins_its_walk(search):
    (lk,) = lookups(aaaa_first(), search=search)
    assert lk.candidates == (NAME, CAND) and lk.qtypes == ("AAAA", "A")
    assert lk.queries == 3 and lk.outcome == "answered" and lk.addresses == ADDR


@KNOWN
def test_aaaa_first_per_query_sockets(search):
    (lk,) = lookups(aaaa_first(port_per_query=True), search=search)
    assert lk.queries == 3 and lk.outcome == "answered"


@KNOWN
def test_aaaa_first_refused_for_the_suffixed_name_is_not_a_dns_error(search):
    """REFUSED for ``name.suffix`` in the AAAA walk, then A ``name`` answered: the lookup
    resolved; the REFUSED is a note (info), never the dns-error verdict."""
    res = analyze(aaaa_first(rcode_suffix=5), search=search)
    (lk,) = res.summary.lookups
    assert lk.outcome == "answered" and lk.errors == 1
    rep = capture_report(res)
    assert rep.verdict == "ok"
    (f,) = [f for f in rep.findings if f.code == "capture-error-rcodes"]
    assert f.severity == "info" and f.verdict is None


@KNOWN
def test_a_first_then_the_aaaa_walk(search):
    """A through the search list to its answer, then AAAA from the first candidate again."""
    out = [q(0.0, 40000, 10, CAND, A), r(0.0003, 40000, 10, CAND, A, rcode=3),
           q(0.0004, 40001, 11, NAME, A), r(0.0007, 40001, 11, NAME, A, addresses=ADDR),
           q(0.00072, 40002, 12, CAND, AAAA), r(0.001, 40002, 12, CAND, AAAA, rcode=3),
           q(0.0011, 40003, 13, NAME, AAAA), r(0.0014, 40003, 13, NAME, AAAA)]
    (lk,) = lookups(out, search=search)
    assert lk.candidates == (CAND, NAME) and lk.queries == 4
    assert lk.outcome == "answered" and lk.nxdomain == 2 and lk.addresses == ADDR


def test_per_candidate_and_per_type_sockets_go():
    """Go: AAAA and A of each candidate in parallel, each from a socket of its own."""
    out = [q(0.0, 40000, 10, CAND, AAAA), q(0.00003, 40001, 11, CAND, A),
           r(0.0003, 40000, 10, CAND, AAAA, rcode=3), r(0.00033, 40001, 11, CAND, A, rcode=3),
           q(0.0005, 40002, 12, NAME, AAAA), q(0.00053, 40003, 13, NAME, A),
           r(0.0008, 40002, 12, NAME, AAAA), r(0.00083, 40003, 13, NAME, A, addresses=ADDR)]
    (lk,) = lookups(out)
    assert lk.candidates == (CAND, NAME) and lk.queries == 4 and lk.client_ports == (40000, 40001, 40002, 40003)


@KNOWN
def test_same_question_from_two_sockets_8_s_apart_is_two_lookups(search):
    """No resolver waits 8 s for one try (glibc 5 s, stretched at most 4/3 on its third
    server; musl 2.5 s; Go 5 s): the second question is a new call, not a retry."""
    out = [q(0.0, 40000, 10, NAME, A), q(8.0, 40002, 20, NAME, A), r(8.0003, 40002, 20, NAME, A, addresses=ADDR)]
    lks = sorted(lookups(out, search=search), key=lambda lk: lk.ts)
    assert len(lks) == 2, lks
    assert [lk.outcome for lk in lks] == ["unanswered", "answered"]
    assert all(lk.retransmissions == 0 for lk in lks)


def test_a_question_asked_every_8_s_is_one_lookup_each_not_one_over_49_s():
    out = [q(8.0 * i, 40000 + i, 10 + i, NAME, A) for i in range(7)]
    lks = lookups(out)
    assert len(lks) == 7 and max(lk.duration_ms for lk in lks) < 10_000


def test_a_retry_within_the_timeout_still_joins():
    """The Go shape: the unanswered question asked again from a new socket with a new ID one
    timeout later: one lookup with a retransmission."""
    out = [q(0.0, 40000, 10, NAME, A), q(5.0, 40002, 20, NAME, A), r(5.0003, 40002, 20, NAME, A, addresses=ADDR)]
    (lk,) = lookups(out)
    assert (lk.queries, lk.retransmissions, lk.outcome) == (1, 1, "answered")
