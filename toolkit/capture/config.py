"""What the analyzer is told: the resolver timeout, the windows that group packets into
lookups, and the caps that bound its memory (``AnalyzerConfig``)."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_TIMEOUT = 5.0  # glibc RES_TIMEOUT


@dataclass(frozen=True, kw_only=True)
class AnalyzerConfig:
    """The analyzer's settings; the defaults fit glibc, musl and Go resolvers."""

    timeout: float = DEFAULT_TIMEOUT  # the resolver timeout: no answer within it = unanswered
    # A and AAAA "sent together" from one socket. glibc hands both to one sendmmsg(), but the
    # kernel may defer the second packet's transmission behind the first one's softirq work
    # (ksoftirqd on a busy node): 7 ms apart was seen in the lab on a loaded machine.
    race_window: float = 0.02
    chain_window: float = 1.0  # quiet time after which a search-list chain is complete
    # A resolver retries an unanswered question only after its timeout (glibc RES_TIMEOUT,
    # Go's resolv.conf timeout, musl timeout/attempts = 2.5 s): the same question from the
    # same client sooner than this, with a new ID, is a concurrent lookup, not a retry.
    retry_after: float = 0.9
    # How many times a resolver sends one question to each server (glibc RES_DFLRETRY,
    # resolv.conf `attempts`, default 2; Go the same; musl 2): with the timeout and the
    # servers, the longest a resolver keeps asking one question (glibc: timeout x attempts
    # x servers, at most 3 servers). A query later than that is a new lookup, not a retry.
    attempts: int = 2
    # A resolver that asks one type through the whole search list, then the other (AAAA
    # first: older glibc, Windows; A first) sends the other type's first candidate within
    # microseconds of the last answer of the first walk.
    restart_window: float = 0.1
    search: tuple[str, ...] = ()  # the search list, when known (live in the pod)
    max_pending: int = 65_536
    max_open_chains: int = 8_192
    max_chains_per_client: int = 64
    keep_lookups: int = 200
    keep_evidence: int = 20
    max_servers: int = 512
    max_tc_waiting: int = 4_096
    exact_latency_samples: int = 2_048

    def retry_bound(self, servers: int) -> float:
        """The longest one question is asked again by one resolver call: glibc's worst case,
        timeout x attempts x servers (default 5 s x 2 x at most MAXNS = 3 servers: 30 s),
        counted from the question's first send. Past it glibc's res_send has returned
        ETIMEDOUT, so the same question is a new getaddrinfo call."""
        return self.timeout * max(1, self.attempts) * min(3, max(1, servers))

    @property
    def try_bound(self) -> float:
        """The longest a resolver waits on one try before it sends the question again (or gives
        up): glibc's send_dg waits the timeout, scaled for a later server by its index over
        the server count (at most 4/3 of it, the third of MAXNS = 3); musl resends every
        timeout/attempts; Go every timeout. The same question after a longer silence is
        another call (issue 24: one question from two sockets 8 s apart is two lookups).
        The 0.5 s: scheduling on a loaded node, far above the capture's timing jitter."""
        return self.timeout * 4.0 / 3.0 + 0.5
