"""The retry bounds of a lookup against the libraries' own formulas (glibc resolv/res_send.c
send_dg, Go net/dnsclient_unix.go tryOneName, musl res_msend.c)."""

from __future__ import annotations

import pytest

from toolkit.capture.config import AnalyzerConfig, glibc_try_wait


@pytest.mark.parametrize("timeout, servers, waits", [
    (5, 1, [5]),  # one server: the timeout
    (5, 2, [5, 5]),  # (5 << 1) / 2
    (5, 3, [5, 3, 6]),  # (5 << 1) / 3 = 3, (5 << 2) / 3 = 6: integer seconds
    (1, 3, [1, 1, 1]),  # 2 / 3 = 0 -> at least 1 s
    (30, 3, [30, 20, 40]),  # RES_MAXRETRANS
])
def test_glibc_waits_per_server_index(timeout, servers, waits):
    assert [glibc_try_wait(timeout, i, servers) for i in range(servers)] == waits


def test_try_bound_is_the_longest_wait_plus_slack():
    cfg = AnalyzerConfig()  # 5 s, 2 attempts
    assert cfg.try_bound(1) == 5.5 and cfg.try_bound(2) == 5.5
    assert cfg.try_bound(3) == 6.5  # 4/3 of the timeout only with three servers
    assert cfg.try_bound(7) == 6.5  # MAXNS


def test_retry_bound_is_gos_which_is_the_longest():
    cfg = AnalyzerConfig()
    # Go: 5 x 2 x 3 = 30 s; glibc: 2 x (5 + 3 + 6) = 28 s; musl: 5 s
    assert cfg.retry_bound(3) == 30.0 and cfg.retry_bound(1) == 10.0
    # timeout 1: glibc's 1-second floor makes its round 3 s, as long as Go's
    assert AnalyzerConfig(timeout=1).retry_bound(3) == 6.0
