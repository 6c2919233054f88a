"""What each client's resolver library does with what the capture saw (issue 24, item 5):
rules ``CaptureResult -> Finding | None`` over the lookups whose process and library are
known (``toolkit.capture.libraries``), in ``rules.RULES``.

``LIBRARY_BEHAVIOUR`` is the README's library table, as data: what each library sends and
what fixes its failure modes. Sources: glibc resolv/res_send.c (send_dg: A and AAAA from one
socket with sendmmsg; single-request-reopen), musl src/network/res_msend.c (one socket, every
server at once, retry every timeout/attempts; TCP after TC only since 1.2.4), Go
net/dnsclient_unix.go (a socket per query, A and AAAA in parallel), OpenJDK InetAddress
(networkaddress.cache.ttl 30 s without a security manager, negative.ttl 10 s).
"""

from __future__ import annotations

from collections import defaultdict

from toolkit.capture.libraries import Library, ResolverLibrary, version_tuple
from toolkit.capture.records import CaptureResult, Lookup
from toolkit.model import Finding, Severity

MUSL_TCP_FALLBACK = (1, 2, 4)  # musl 1.2.4 (2023-05): TCP after a truncated UDP answer

LIBRARY_BEHAVIOUR: dict[Library, str] = {
    Library.GLIBC: "a socket per search candidate, A and AAAA sent together from it (sendmmsg); "
    "`options single-request-reopen` sends them one after the other from new sockets; a name "
    "with a trailing dot, or a lower ndots in the pod's dnsConfig, skips the walk",
    Library.MUSL: "one socket for the whole call, A and AAAA to every server at once, resent every "
    "timeout/attempts; ignores single-request(-reopen) and use-vc; before 1.2.4 no TCP after a "
    "truncated answer; a trailing dot or a lower ndots skips the walk",
    Library.GO: "a socket per query, A and AAAA in parallel, each server in turn (GODEBUG=netdns=go; "
    "netdns=cgo hands the call to the libc); a trailing dot or a lower ndots skips the walk",
    Library.JAVA: "InetAddress over the libc below it, caching answers 30 s (networkaddress.cache.ttl) "
    "and failures 10 s (networkaddress.cache.negative.ttl): a fixed server is seen late",
}


def _by_library(lookups: tuple[Lookup, ...]) -> dict[ResolverLibrary, list[Lookup]]:
    """The lookups whose library is known, by library."""
    out: dict[ResolverLibrary, list[Lookup]] = defaultdict(list)
    for lk in lookups:
        if lk.process is not None and lk.process.library is not None:
            out[lk.process.library].append(lk)
    return out


def _who(lks: list[Lookup]) -> str:
    """'gai-musl[41], curl[57]': the processes of some lookups, at most four."""
    names = dict.fromkeys(f"{lk.process.name}[{lk.process.pid}]" for lk in lks if lk.process is not None)
    more = f" +{len(names) - 4}" if len(names) > 4 else ""
    return ", ".join(list(names)[:4]) + more


def _musl_without_tcp(lib: ResolverLibrary) -> bool:
    """musl older than 1.2.4, or musl of a version that could not be read."""
    v = version_tuple(lib.version)
    return lib.kind == Library.MUSL and (v is None or v < MUSL_TCP_FALLBACK)


def truncated_to_musl(res: CaptureResult) -> Finding | None:
    """Truncated answers in a capture of musl clients that cannot retry over TCP."""
    s = res.summary
    if not s.tc_not_followed:
        return None
    libs = {lib: lks for lib, lks in _by_library(s.lookups).items() if _musl_without_tcp(lib)}
    if not libs:
        return None
    ev = tuple(f"{lib.label()}: {_who(lks)}" + ("" if lib.version else " (version unreadable: a static binary, "
               "or no package database)") for lib, lks in libs.items())
    return Finding(
        code="capture-library-no-tcp-fallback", severity=Severity.WARNING,
        summary=f"{s.tc_not_followed} truncated answer(s) not retried over TCP, and musl clients older than "
        f"1.2.4 asked in this capture: musl before 1.2.4 never retries over TCP, so a large answer "
        f"fails for them (Alpine's classic DNS failure)",
        evidence=ev, remedy="Upgrade the image to musl 1.2.4 or later (Alpine 3.18+), keep answers under 512 "
        "bytes (fewer records), or use a glibc image.", verdict=None,
        data={"not_followed": s.tc_not_followed, "libraries": [lib.label() for lib in libs]})


def parallel_queries(res: CaptureResult) -> Finding | None:
    """The 5-second signature, with what each client's library does about it."""
    s = res.summary
    if not s.signature_hits:
        return None
    libs = _by_library(s.lookups)
    if not libs:
        return None
    fix = {Library.GLIBC: "sends A and AAAA from one socket: `options single-request-reopen` in dnsConfig",
           Library.MUSL: "sends A and AAAA from one socket and ignores single-request-reopen: NodeLocal "
           "DNSCache (no DNAT) or a glibc image",
           Library.GO: "uses a socket per query: the same-socket race does not apply to it",
           Library.JAVA: "inherits the libc below it"}
    ev = tuple(f"{lib.label()} ({_who(lks)}): {fix[lib.kind]}" for lib, lks in libs.items())
    return Finding(
        code="capture-library-parallel-queries", severity=Severity.INFO,
        summary=f"the clients' resolver libraries, for the 5-second signature seen {s.signature_hits} time(s)",
        evidence=ev, remedy="Apply the fix of each library listed.", verdict=None,
        data={"libraries": [lib.label() for lib in libs]})


def search_walks(res: CaptureResult) -> Finding | None:
    """The search-list walks, by client library, with what each library does with ndots."""
    libs = {lib: [lk for lk in lks if len(lk.candidates) > 1] for lib, lks in _by_library(res.summary.lookups).items()}
    libs = {lib: lks for lib, lks in libs.items() if lks}
    if not libs:
        return None
    ev = []
    for lib, lks in sorted(libs.items(), key=lambda kv: -len(kv[1])):
        q = sum(lk.queries for lk in lks)
        ev.append(f"{lib.label()} ({_who(lks)}): {len(lks)} lookup(s) walked the search list, "
                  f"{q / len(lks):.1f} queries each; {LIBRARY_BEHAVIOUR[lib.kind]}")
    return Finding(
        code="capture-library-search-walks", severity=Severity.INFO,
        summary=f"search-list walks by client library: {', '.join(lib.label() for lib in libs)}",
        evidence=tuple(ev), remedy="Use fully qualified names (a trailing dot) or lower ndots in the pod's "
        "dnsConfig; see each library's line.", verdict=None,
        data={lib.label(): len(lks) for lib, lks in libs.items()})
