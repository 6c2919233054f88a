"""Search timing: how long glibc waits per server (res_send.c ``send_dg``), the worst-case
time to fail when no server answers, and the number of queries one lookup sends."""

from __future__ import annotations

from toolkit.sysinfo.resolvconf.record import ResolvConf


def per_server_timeouts(conf: ResolvConf) -> tuple[int, ...]:
    """Seconds glibc waits for server i in one round (res_send.c ``send_dg``):
    ``retrans << i``, divided by the server count for i > 0, at least 1 s. With one server
    that is ``timeout``; with three and timeout:5 it is 5, 3, 6 (not 5, 5, 5). The A and
    AAAA queries of one candidate share the window (also with single-request)."""
    n = max(len(conf.nameservers), 1)
    out = []
    for i in range(n):
        seconds = conf.timeout << i if conf.timeout >= 0 else conf.timeout
        if i > 0:
            seconds = int(seconds / n)     # C division truncates toward zero
        out.append(max(seconds, 1))
    return tuple(out)


def worst_case_seconds(conf: ResolvConf, candidates: int) -> float:
    """How long a lookup of ``candidates`` names takes when no server ever answers.

    The naive formula is timeout x attempts x servers x candidates; glibc's real window
    per server is ``per_server_timeouts`` (retrans << server_index / nscount for servers
    after the first), repeated ``attempts`` times over all servers, per candidate. With
    use-vc (TCP) each server is tried once and the connect timeout is the kernel's.
    Note that glibc stops searching after the first timed-out search candidate (see
    ``timeout_candidates``), so pass that count for the real time to failure.
    """
    if candidates <= 0 or conf.attempts <= 0:
        return 0.0
    rounds = 1 if conf.use_vc else conf.attempts
    return float(rounds * sum(per_server_timeouts(conf)) * candidates)


def queries_per_lookup(conf: ResolvConf, candidates: int, families: int = 2) -> int:
    """Queries sent when every candidate gets NXDOMAIN at the first try: one per address
    family per candidate (A and AAAA), only A with ``no-aaaa``."""
    if candidates <= 0:
        return 0
    return candidates * (1 if conf.no_aaaa else max(families, 1))
