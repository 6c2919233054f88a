"""A throwaway pair of network namespaces joined by a veth, for the live-capture tests that
need a quiet wire (test_capture_ring.py, test_capture_replay.py): IPv6 off in both (no router
or neighbour solicitations in the counts), both ends up, everything deleted afterwards."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import pytest


def sh(*cmd: str, check: bool = True) -> None:
    """Run one setup command (ip, sysctl), bounded."""
    subprocess.run(cmd, check=check, capture_output=True, timeout=30)


def need_root() -> None:
    """Fail as non-root, or skip with PT_ALLOW_LAB_SKIP=1 (never in CI, which runs as root)."""
    if os.geteuid() != 0 and os.environ.get("PT_ALLOW_LAB_SKIP") != "1":
        pytest.fail("needs root (network namespaces, packet sockets)")
    elif os.geteuid() != 0:
        pytest.skip("needs root")


@contextmanager
def veth_pair(ns_a: str, ns_b: str, dev_a: str, dev_b: str,
              setup_a: Sequence[Sequence[str]] = ()) -> Iterator[None]:
    """NS_A's DEV_A joined to NS_B's DEV_B; SETUP_A: `ip -n NS_A` argument lists run before
    the links come up (addresses, static neighbours)."""
    need_root()
    for ns in (ns_a, ns_b):
        sh("ip", "netns", "del", ns, check=False)
        sh("ip", "netns", "add", ns)
    try:
        for ns in (ns_a, ns_b):
            for conf in ("all", "default"):
                sh("ip", "netns", "exec", ns, "sysctl", "-qw", f"net.ipv6.conf.{conf}.disable_ipv6=1")
        sh("ip", "link", "add", dev_a, "netns", ns_a, "type", "veth", "peer", "name", dev_b, "netns", ns_b)
        for args in setup_a:
            sh("ip", "-n", ns_a, *args)
        for ns, dev in ((ns_a, dev_a), (ns_b, dev_b)):
            sh("ip", "-n", ns, "link", "set", dev, "up")
        yield
    finally:
        for ns in (ns_a, ns_b):
            sh("ip", "netns", "del", ns, check=False)
