"""The capture's results: frozen records the analyzer streams and the summary it ends with.

``Pair``, ``Unanswered``, ``Retransmission``, ``IcmpSeen`` and ``Lookup`` go to the sink as
they happen (the CLI streams them as ndjson events); ``CaptureSummary`` is the analyzer's
final word and ``CaptureResult`` one whole run, offline or live, with what the decoder and
the kernel counted. The field names are the JSON keys of ``podtriage capture -o json``.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from toolkit.capture.decode import Malformed
from toolkit.capture.dnswire import Transport
from toolkit.capture.libraries import ResolverLibrary
from toolkit.capture.pcapio import CaptureFormat
from toolkit.sockerr import NetError


class UnansweredReason(StrEnum):
    """Why a query stopped waiting for its answer."""

    TIMEOUT = "timeout"  # no answer at all, after waiting at least the resolver timeout
    CAPTURE_ENDED = "capture-ended"  # the capture ended inside the timeout
    EVICTED = "evicted"  # pushed out by the cap on pending queries (the memory bound)
    TXID_REUSED = "txid-reused"  # the socket asked another question with the same ID
    RESENT = "resent"  # the same question again from the same socket, after the timeout


class Explanation(StrEnum):
    """What explains an unanswered query, when something does."""

    SIGNATURE = "5s-signature"  # its A/AAAA twin was answered: the conntrack race's mark


class IcmpAbout(StrEnum):
    """Which way the packet an ICMP error quotes went."""

    QUERY = "query"  # to a server port
    RESPONSE = "response"  # to a client port


class LookupOutcome(StrEnum):
    """How a lookup ended, when not by an error rcode (then ``Lookup.outcome`` is its name)."""

    ANSWERED = "answered"
    UNANSWERED = "unanswered"
    CUT_SHORT = "cut-short"  # a file read stopped before its answer could be read
    CAPTURE_ENDED = "capture-ended"  # the capture ended while it still waited, inside the timeout
    NODATA = "NODATA"  # NOERROR without an answer for any candidate (RFC 2308 2.2)
    MALFORMED = "malformed-answer"  # the answer could not be read (glibc fails the lookup: EAI_FAIL)


class LatencyBucket(StrEnum):
    """The latency histogram's buckets (log scale): how long a client waited for a question's
    answer, from its first send; and the questions never answered."""

    UNDER_1MS = "<1 ms"
    MS_1_10 = "1-10 ms"
    MS_10_100 = "10-100 ms"
    MS_100_1000 = "0.1-1 s"
    S_1_5 = "1-5 s"
    S_5_10 = "5-10 s"
    OVER_10S = ">10 s"
    NEVER = "never answered"


# upper bounds (ms, exclusive) of the answered buckets, in order; the last answered bucket is open
BUCKET_BOUNDS_MS = (1.0, 10.0, 100.0, 1000.0, 5000.0, 10000.0)
ANSWERED_BUCKETS = tuple(LatencyBucket)[:7]


def bucket_of(ms: float) -> int:
    """The index of the answered bucket ``ms`` falls into."""
    return bisect.bisect_right(BUCKET_BOUNDS_MS, ms)


class CaptureMode(StrEnum):
    """Where the packets came from."""

    READ = "read"  # a pcap/pcapng file
    LIVE = "live"  # a packet socket


class StopReason(StrEnum):
    """What ended the reading of packets."""

    END = "end"  # the end of the file
    DURATION = "duration"
    COUNT = "count"
    DEADLINE = "deadline"
    SIGNAL = "signal"  # SIGINT/SIGTERM or the caller's stop event


@dataclass(frozen=True)
class ProcessInfo:
    """The process that held a lookup's client socket (who asked)."""

    pid: int
    name: str
    cmdline: str = ""
    library: ResolverLibrary | None = None  # read from /proc/PID/maps while it ran (libraries.py)


@dataclass(frozen=True, kw_only=True)
class Pair:
    """A query and its response."""

    ts: float  # first send of the query
    client: str
    client_port: int
    server: str
    server_port: int
    transport: Transport
    txid: int
    qname: str | None
    qtype: str
    rcode: str
    latency_ms: float  # from the first send (what tshark's dns.time measures)
    latency_last_ms: float  # from the last retransmission
    retransmissions: int
    answers: int
    addresses: tuple[str, ...] = ()
    tc: bool = False
    aa: bool = False
    late: bool = False  # answered more than the resolver timeout after the question was first asked
    waited_ms: float = 0.0  # from the question's first send (across resends) to this answer
    malformed_answer: str | None = None  # why the answer section cannot be read (no address trusted)
    sends: int = 1  # times the question went to this socket and ID (resends after the timeout included)


@dataclass(frozen=True, kw_only=True)
class Unanswered:
    """A query that never got its answer (or not within what the capture could see)."""

    ts: float
    client: str
    client_port: int
    server: str
    server_port: int
    transport: Transport
    txid: int
    qname: str | None
    qtype: str
    sends: int
    waited_s: float
    reason: UnansweredReason
    icmp: NetError | None = None  # ICMP error seen for it (kind)
    icmp_from: str | None = None
    explained_by: Explanation | None = None


@dataclass(frozen=True, kw_only=True)
class Retransmission:
    """The same query sent again (same socket, same ID) within the resolver timeout."""

    ts: float
    client: str
    client_port: int
    server: str
    server_port: int
    transport: Transport
    txid: int
    qname: str | None
    qtype: str
    attempt: int  # 2 for the first resend
    since_first_ms: float


@dataclass(frozen=True, kw_only=True)
class Mismatch:
    """A response with a query's socket and ID but another question: never paired. glibc
    drops it (res_queriesmatch: same name, type and class); musl matches by ID alone."""

    ts: float
    client: str
    client_port: int
    server: str
    server_port: int
    transport: Transport
    txid: int
    asked: str | None  # the query's name
    asked_type: str
    answered: str | None  # the response's question name (None: no question at all)
    answered_type: str
    rcode: str
    addresses: tuple[str, ...]  # what it carried (for the record: never taken as an answer)


@dataclass(frozen=True, kw_only=True)
class IcmpSeen:
    """An ICMP error about DNS traffic, matched to the query it quotes when possible."""

    ts: float
    sender: str
    to: str
    kind: NetError
    icmp_type: int
    icmp_code: int
    transport: Transport
    about: IcmpAbout
    server: str
    server_port: int
    client: str
    client_port: int
    txid: int | None
    qname: str | None
    qtype: str | None
    matched: bool  # it quotes a query we saw


@dataclass(frozen=True, kw_only=True)
class SignatureHit:
    """The 5-second signature, once: A/AAAA sent together, one answered, one resent."""

    ts: float
    client: str
    client_port: int
    server: str
    qname: str | None
    answered: str  # qtype answered at once
    lost: str  # qtype that had to be sent again
    answered_in_ms: float
    resent_after_s: float
    new_socket: bool


@dataclass(frozen=True, kw_only=True)
class Lookup:
    """One application lookup: the candidates of one base name from one client."""

    ts: float
    client: str
    base: str
    candidates: tuple[str, ...]
    qtypes: tuple[str, ...]
    queries: int  # transactions sent (the amplification factor)
    retransmissions: int
    nxdomain: int
    nodata: int
    errors: int  # SERVFAIL, REFUSED, ...
    unanswered: int
    outcome: LookupOutcome | str  # a LookupOutcome, or the name of the error rcode that ended it
    answered_name: str | None
    addresses: tuple[str, ...]
    duration_ms: float
    servers: tuple[str, ...]
    client_ports: tuple[int, ...]
    process: ProcessInfo | None = None

    __json_properties__ = ("amplification", "search_suffix")

    @property
    def amplification(self) -> int:
        """Queries one application lookup cost (the search list's multiplier)."""
        return self.queries

    @property
    def search_suffix(self) -> str | None:
        """The search domain the answering candidate added to the base name (``answered_name``
        is ``base.search_suffix``), or None: answered as the name itself, or not answered."""
        name = (self.answered_name or "").rstrip(".").lower()
        base = self.base.rstrip(".").lower()
        if not name or not base or not name.startswith(base + "."):
            return None
        return name[len(base) + 1:]


@dataclass(frozen=True, kw_only=True)
class SearchAnswer:
    """Lookups of one name meant absolute (it has dots) answered by a search-suffixed candidate:
    ``name`` asked, ``candidate`` (``name.suffix``) answered first, so the application got
    ``addresses``, perhaps another name's (a wildcard under the search domain)."""

    name: str  # the base name the application asked for
    candidate: str  # the candidate that answered
    suffix: str  # the search domain that made it
    addresses: tuple[str, ...]
    lookups: int
    clients: tuple[str, ...]
    first_ts: float
    # What the capture saw of the name itself (asked as is, in any lookup of any client):
    itself: tuple[str, ...] = ()  # the addresses it resolved to
    itself_nxdomain: int = 0  # lookups that ended NXDOMAIN on it
    cluster_shaped: bool = False  # the candidate is a Kubernetes service or pod name (svc.ns.svc.zone)
    learnt_suffix: bool = False  # the search list unknown: the suffix is the first domain other walks tried

    @property
    def differs(self) -> bool:
        """The name itself resolved, and to none of the candidate's addresses."""
        return bool(self.itself) and set(self.itself).isdisjoint(self.addresses)


@dataclass(frozen=True, kw_only=True)
class ServerStats:
    """What one DNS server (address and port) was asked and how it answered."""

    server: str
    port: int
    queries: int
    responses: int
    unanswered: int
    retransmissions: int
    rcodes: dict[str, int]
    transports: tuple[Transport, ...]
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_max_ms: float | None
    icmp: dict[str, int] = field(default_factory=dict)  # kind -> count, about queries to it
    icmp_senders: tuple[str, ...] = ()
    unanswered_explained: int = 0  # part of the 5-second signature
    unanswered_at_end: int = 0  # still inside the timeout when the capture ended
    transactions: int = 0  # distinct queries (retransmissions not counted)
    unanswered_lost: int = 0  # no answer from it after waiting at least the timeout, unexplained
    unanswered_reasons: dict[str, int] = field(default_factory=dict)  # UnansweredReason -> count
    late_answers: int = 0  # answered more than the timeout after the question was first asked
    duplicate_responses: int = 0  # the same answer again (its query was answered already)
    answer_rcodes: dict[str, int] = field(default_factory=dict)  # rcodes of the distinct answered queries
    latency_histogram: dict[str, int] = field(default_factory=dict)  # LatencyBucket -> questions

    @property
    def unanswered_unexplained(self) -> int:
        """Queries it never answered although the client waited at least the timeout (or
        resent), that the 5-second signature does not explain: the evidence against it."""
        return self.unanswered_lost


@dataclass(frozen=True, kw_only=True)
class CaptureSummary:
    """Everything the analyzer counted and kept, at the end of a capture."""

    first_ts: float | None
    last_ts: float | None
    dns_messages: int
    queries: int  # query messages, retransmissions included (tshark's count)
    transactions: int  # distinct queries
    responses: int
    pairs: int
    unanswered: int
    unanswered_explained: int  # part of the 5-second signature
    retransmissions: int
    late_responses: int
    unmatched_responses: int
    malformed: int
    rcodes: dict[str, int]
    qtypes: dict[str, int]
    transports: dict[Transport, int]
    servers: tuple[ServerStats, ...]
    lookups_total: int
    lookups: tuple[Lookup, ...]  # the last keep_lookups
    lookups_with_search: int  # lookups that needed more than one candidate
    search_queries: int  # queries spent in those lookups
    search_nxdomain: int
    tc_responses: int
    tc_followed_by_tcp: int
    tc_not_followed: int
    signature_hits: int
    signature_examples: tuple[SignatureHit, ...]
    signature_lost_types: dict[str, int]
    icmp_errors: int
    icmp_examples: tuple[IcmpSeen, ...]
    unanswered_examples: tuple[Unanswered, ...]
    malformed_examples: tuple[Malformed, ...]
    evicted_pending: int
    timeout_s: float
    pending_at_cut: int = 0  # still waiting when a cut-short read stopped: not unanswered
    max_pending: int = 0  # the cap on pending queries (the memory bound; evicted beyond it)
    lookups_attributed: int = 0  # lookups whose process is known (live capture, who-asked)
    unanswered_lost: int = 0  # sum of the servers' unanswered_lost
    unanswered_reasons: dict[str, int] = field(default_factory=dict)
    duplicate_responses: int = 0  # answers to queries already answered (servers answering every resend)
    mismatched_responses: int = 0  # a query's socket and ID, another question: never paired
    mismatch_examples: tuple[Mismatch, ...] = ()
    answer_rcodes: dict[str, int] = field(default_factory=dict)  # rcodes of the distinct answered queries
    malformed_answers: int = 0  # paired answers whose records cannot be read
    malformed_answer_examples: tuple[Pair, ...] = ()
    late_examples: tuple[Pair, ...] = ()  # late answers not explained by the 5-second signature
    late_max_ms: float | None = None  # the longest and shortest wait among those
    late_min_ms: float | None = None
    late_signature: int = 0  # late answers to the 5-second signature's resends
    late_rcodes: dict[str, int] = field(default_factory=dict)  # the other late answers, by rcode
    latency_histogram: dict[str, int] = field(default_factory=dict)  # LatencyBucket -> questions, all servers
    lookup_outcomes: dict[str, int] = field(default_factory=dict)  # outcome -> lookups
    failed_lookup_examples: tuple[Lookup, ...] = ()  # lookups that ended in an error rcode
    search_answers: tuple[SearchAnswer, ...] = ()  # names meant absolute answered by a search candidate


@dataclass(frozen=True, kw_only=True)
class CaptureResult:
    """One capture run, offline or live: the analysis and what the reading counted."""

    mode: CaptureMode
    source: str  # file name or interface
    packets: int  # frames read (file records, or frames the socket delivered)
    summary: CaptureSummary
    decoder: dict[str, int]
    linktypes: tuple[str, ...] = ()
    file_format: CaptureFormat | None = None
    stopped_by: StopReason = StopReason.END
    elapsed_s: float = 0.0
    # Whether the capture holds both directions of the DNS traffic: True for a live capture
    # with podtriage's own filter, or a file whose frames say which way they went (Linux
    # cooked headers) and go both ways; None when nothing says (then silence may be a
    # one-way capture, not a dead server).
    both_directions: bool | None = None
    kernel_packets: int | None = None  # PACKET_STATISTICS: seen by the filter
    kernel_drops: int | None = None  # ... and dropped for lack of buffer
    written: str | None = None  # --write file
    written_packets: int = 0
    filter: str | None = None
    notes: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)  # JSON objects added by the caller (who_asked)
    unread: int | None = None  # live: packets still queued, never read, when the capture stopped
