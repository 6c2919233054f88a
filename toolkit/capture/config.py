"""What the analyzer is told: the resolver timeout, the windows that group packets into
lookups, and the caps that bound its memory (``AnalyzerConfig``)."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_TIMEOUT = 5.0  # glibc RES_TIMEOUT
MAXNS = 3  # glibc resolv.h MAXNS; Go keeps three servers too (dnsconfig_unix.go)


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
        """The longest one resolver call keeps asking one question, counted from its first
        send: Go's tryOneName (net/dnsclient_unix.go: for each of `attempts` rounds, each
        server in turn with the full timeout) is timeout x attempts x servers (5 s x 2 x at
        most 3 servers: 30 s), the longest of the three libraries: glibc's rounds sum its
        per-server waits (``glibc_try_wait``: 5 + 3 + 6 = 14 s a round with three servers,
        28 s in all), musl's whole call is one timeout (res_msend.c: `t2-t0 < timeout`).
        Past it the library has returned ETIMEDOUT: the same question is a new call."""
        n = min(MAXNS, max(1, servers))
        go = self.timeout * max(1, self.attempts) * n
        glibc = max(1, self.attempts) * sum((glibc_try_wait(self.timeout, i, n) for i in range(n)), 0.0)
        return max(go, glibc)

    def try_bound(self, servers: int = MAXNS) -> float:
        """The longest a resolver stays silent on one question before it sends it again (to
        the next server, or the next round) or gives up: glibc's per-server wait
        (``glibc_try_wait``: the timeout for one or two servers, 4/3 of it for the third of
        three), Go's timeout, musl's timeout/attempts. The same question after a longer
        silence is another call (issue 24: one question from two sockets 8 s apart is two
        lookups). The 0.5 s: scheduling on a loaded node, far above the capture's jitter."""
        n = min(MAXNS, max(1, servers))
        return max(self.timeout, *(glibc_try_wait(self.timeout, i, n) for i in range(n))) + 0.5


def glibc_try_wait(timeout: float, index: int, servers: int) -> float:
    """How long glibc's send_dg waits on server number ``index`` of ``servers`` (glibc
    resolv/res_send.c, send_dg: `int seconds = (statp->retrans << ns); if (ns > 0) seconds
    /= statp->nscount; if (seconds <= 0) seconds = 1;`; `ns` is the server's index, not the
    try: the wait is the same in every round). In whole seconds, as resolv.conf's `timeout:n`
    is; a fractional timeout (only ever given here by hand) is kept as it is."""
    whole = timeout == int(timeout)
    t = int(timeout) if whole else timeout
    if index <= 0:
        return float(max(1, t)) if whole else timeout
    w = (t << index) // servers if isinstance(t, int) else t * (1 << index) / servers
    return float(max(1, w)) if whole else max(timeout / servers, w)
