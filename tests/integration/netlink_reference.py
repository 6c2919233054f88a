"""pyroute2's ctnetlink reader: the reference toolkit.conntrack.ctnetlink.SocketReader (the
reader podtriage runs, no ~120 ms import) is compared with on the lab's real tables
(test_netlink_lab.py). pyroute2 is a test dependency only (pyproject.toml)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from toolkit.conntrack.entries import netlink_to_dict


class Pyroute2Reader:
    """ctnetlink through pyroute2, with the methods of toolkit.conntrack.snapshot's reader."""

    def __init__(self) -> None:
        from pyroute2 import Conntrack

        self._ct = Conntrack()

    def stats(self) -> list[Mapping[str, int]]:
        """The per-CPU counters (IPCTNL_MSG_CT_GET_STATS_CPU)."""
        stats: list[Mapping[str, int]] = self._ct.stat()
        return stats

    def count_max(self) -> tuple[int | None, int | None]:
        """This netns's entry count and nf_conntrack_max."""
        count: int | None = self._ct.count()
        cmax: int | None = self._ct.conntrack_max_size()
        return count, cmax

    def dump(self) -> Iterator[Mapping[str, Any]]:
        """Every entry of both families, as netlink_to_dict's dicts ({} for the others)."""
        import socket

        from pyroute2.netlink.nfnetlink.nfctsocket import NFCTSocket

        for family in (socket.AF_INET, socket.AF_INET6):
            sock = NFCTSocket(nfgen_family=family)
            try:
                for msg in sock.dump():
                    d = netlink_to_dict(msg)
                    yield d if d is not None else {}
            finally:
                sock.close()

    def close(self) -> None:
        """Close the netlink socket."""
        self._ct.close()
