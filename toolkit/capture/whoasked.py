"""Who asked: map a DNS client socket (local address and port) to its process.

Works when the debug container shares the pod's process namespace (``kubectl debug
--target``) and may read other processes' fds (root in the pod's user namespace). Best
effort by design: glibc opens a socket per lookup and closes it a few milliseconds later, so
a short-lived socket is often gone before anyone can look; long-lived resolver sockets
(Go, c-ares, dnsmasq, systemd-resolved, Java) are found. Never raises.
"""

from __future__ import annotations

import time
from collections import OrderedDict

from toolkit.errors import reraise_bug
from toolkit.capture.analysis import ProcessInfo

REFRESH_MIN_S = 1.0  # a full socket table scan costs 10-50 ms: at most once a second
MAX_CACHE = 4096


class WhoAsked:
    """Callable ``(local_ip, local_port, transport) -> ProcessInfo | None`` with a cache."""

    def __init__(self, *, refresh_min_s: float = REFRESH_MIN_S, clock=time.monotonic) -> None:
        self.refresh_min_s = refresh_min_s
        self.clock = clock
        self._table: dict[tuple[str, int, str], int] = {}
        self._procs: OrderedDict[int, ProcessInfo | None] = OrderedDict()
        self._last = -1e18
        self.available = True
        self.denied = False
        self.refreshes = 0

    def refresh(self) -> None:
        try:
            import psutil
        except ImportError:
            self.available = False
            return
        self._last = self.clock()
        self.refreshes += 1
        table: dict[tuple[str, int, str], int] = {}
        for kind, transport in (("udp", "udp"), ("tcp", "tcp")):
            try:
                conns = psutil.net_connections(kind=kind)
            except (psutil.AccessDenied, PermissionError):
                self.denied = True
                continue
            except (OSError, psutil.Error):
                continue
            for c in conns[:65536]:
                if c.pid is None or not c.laddr:
                    continue
                table[(c.laddr.ip, c.laddr.port, transport)] = c.pid
                table.setdefault(("*", c.laddr.port, transport), c.pid)
        self._table = table

    def process(self, pid: int) -> ProcessInfo | None:
        if pid in self._procs:
            return self._procs[pid]
        info = None
        try:
            import psutil

            p = psutil.Process(pid)
            with p.oneshot():
                name = p.name()
                try:
                    cmd = " ".join(p.cmdline())[:300]
                except (psutil.AccessDenied, psutil.ZombieProcess):
                    cmd = ""
            info = ProcessInfo(pid, name, cmd)
        except Exception as exc:  # noqa: BLE001 - NoSuchProcess, AccessDenied, ImportError: best effort
            reraise_bug(exc)
            info = None
        self._procs[pid] = info
        if len(self._procs) > MAX_CACHE:
            self._procs.popitem(last=False)
        return info

    def __call__(self, ip: str, port: int, transport: str = "udp") -> ProcessInfo | None:
        if not self.available:
            return None
        pid = self._table.get((ip, port, transport)) or self._table.get(("*", port, transport))
        if pid is None and self.clock() - self._last >= self.refresh_min_s:
            self.refresh()
            pid = self._table.get((ip, port, transport)) or self._table.get(("*", port, transport))
        if pid is None:
            return None
        return self.process(pid)
