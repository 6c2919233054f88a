"""The analyzer's counters: the run's totals (``Counters``), each server's tally
(``ServerTally``), and the bounded examples kept as evidence (``Evidence``).

Mutable on purpose: they are the analyzer's running state, updated per packet, and become
frozen records (``CaptureSummary``, ``ServerStats``) once, at the end. Counts by rcode and
question type are kept by number and named at the end (a name per packet costs a call).
Every number a finding prints is one of these counters (or a sum of them), never a count
of the examples kept: the examples are capped, the counters are not.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import TypeVar

from toolkit.capture.decode import Malformed
from toolkit.capture.dnswire import Transport, rcode_name
from toolkit.capture.latency import LatencyStats
from toolkit.capture.records import (LatencyBucket, Lookup, Mismatch, IcmpSeen, Pair, ServerStats, SignatureHit,
                                     Unanswered, UnansweredReason)

T = TypeVar("T")
BUCKETS = tuple(LatencyBucket)
NEVER = len(BUCKETS) - 1  # the index of "never answered"


@dataclass(slots=True, kw_only=True)
class Counters:
    """Every total of a run; ``Analyzer.summary`` turns them into ``CaptureSummary``."""

    dns_messages: int = 0
    queries: int = 0  # query messages, retransmissions included
    transactions: int = 0  # distinct queries
    responses: int = 0
    pairs: int = 0
    unanswered: int = 0
    unanswered_explained: int = 0
    reasons: Counter[UnansweredReason] = field(default_factory=Counter)
    retransmissions: int = 0
    late: int = 0
    late_signature: int = 0  # late answers to the 5-second signature's resends
    late_rcodes: Counter[int] = field(default_factory=Counter)  # the other late answers, by rcode
    late_max_ms: float = 0.0
    late_min_ms: float = float("inf")
    unmatched: int = 0
    duplicates: int = 0
    mismatched: int = 0
    malformed: int = 0
    malformed_answers: int = 0
    evicted: int = 0
    pending_at_cut: int = 0
    rcodes: Counter[int] = field(default_factory=Counter)  # by numeric rcode, every response
    qtypes: Counter[int] = field(default_factory=Counter)  # by numeric question type
    transports: Counter[Transport] = field(default_factory=Counter)
    lookups_total: int = 0
    lookups_with_search: int = 0
    search_queries: int = 0
    search_nx: int = 0
    lookups_attributed: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)  # lookup outcome -> lookups
    tc_responses: int = 0
    tc_followed: int = 0
    tc_not_followed: int = 0
    sig_hits: int = 0
    sig_lost: Counter[str] = field(default_factory=Counter)  # qtype name -> times it was the one lost
    icmp_errors: int = 0


@dataclass(slots=True, kw_only=True)
class Evidence:
    """The examples a report shows, each list capped (``keep_evidence``, ``keep_lookups``)."""

    keep: int
    lookups: deque[Lookup]
    signatures: list[SignatureHit] = field(default_factory=list)
    icmp: list[IcmpSeen] = field(default_factory=list)
    unanswered: list[Unanswered] = field(default_factory=list)
    malformed: list[Malformed] = field(default_factory=list)
    mismatches: list[Mismatch] = field(default_factory=list)
    malformed_answers: list[Pair] = field(default_factory=list)
    late: list[Pair] = field(default_factory=list)
    failed_lookups: list[Lookup] = field(default_factory=list)

    def add(self, bucket: list[T], item: T) -> None:
        """Keep ``item`` in ``bucket`` while there is room."""
        if len(bucket) < self.keep:
            bucket.append(item)


class ServerTally:
    """One DNS server's counts while the capture runs."""

    __slots__ = ("queries", "transactions", "responses", "unanswered", "explained", "retrans", "rcodes",
                 "answer_rcodes", "transports", "lat", "icmp", "icmp_senders", "ended", "lost", "reasons",
                 "late", "duplicates", "hist")

    def __init__(self, exact_cap: int) -> None:
        self.queries = self.transactions = self.responses = self.unanswered = self.retrans = 0
        self.explained = self.ended = self.lost = self.late = self.duplicates = 0
        self.rcodes: Counter[int] = Counter()
        self.answer_rcodes: Counter[int] = Counter()
        self.transports: set[Transport] = set()
        self.lat = LatencyStats(exact_cap)
        self.icmp: Counter[str] = Counter()
        self.icmp_senders: set[str] = set()
        self.reasons: Counter[UnansweredReason] = Counter()
        self.hist = [0] * len(BUCKETS)

    def stats(self, server: str, port: int) -> ServerStats:
        """The frozen record of this tally."""
        lat = self.lat
        return ServerStats(
            server=server, port=port, queries=self.queries, responses=self.responses,
            unanswered=self.unanswered, retransmissions=self.retrans,
            rcodes={rcode_name(k): v for k, v in self.rcodes.items()}, transports=tuple(sorted(self.transports)),
            latency_p50_ms=lat.percentile(0.5), latency_p95_ms=lat.percentile(0.95),
            latency_max_ms=lat.max if lat.count else None, icmp=dict(self.icmp),
            icmp_senders=tuple(sorted(self.icmp_senders)), unanswered_explained=self.explained,
            unanswered_at_end=self.ended, transactions=self.transactions, unanswered_lost=self.lost,
            unanswered_reasons={str(k): v for k, v in self.reasons.items()}, late_answers=self.late,
            duplicate_responses=self.duplicates,
            answer_rcodes={rcode_name(k): v for k, v in self.answer_rcodes.items()},
            latency_histogram=histogram(self.hist))


def histogram(counts: list[int]) -> dict[str, int]:
    """Bucket name -> count, every bucket present (zeros included), in order."""
    return {str(b): n for b, n in zip(BUCKETS, counts, strict=True)}
