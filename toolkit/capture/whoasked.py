"""Who asked: map a DNS client socket (local address and port) to its process.

Works when the debug container shares the pod's process namespace (``kubectl debug
--target``) and may read other processes' fds (root in the pod's user namespace). Never
raises, never guesses: a lookup whose socket was not seen open by a known process stays
unattributed (``process: null``).

glibc opens a socket per search-list candidate and closes it as soon as both answers are in
(one round trip: 0.3 ms in the lab, a few ms in a cluster), so a periodic table scan misses
most of them. During a live capture, the first query from each client port triggers an
exact sock_diag lookup (``SOCK_DIAG_BY_FAMILY`` without a dump, linux/inet_diag.h) of that
very socket, then its inode is found among ``/proc/PID/fd`` of the processes in this
network namespace: the fd that held the last DNS socket first (glibc reuses the lowest free
fd), then known askers, then the others. What was found is kept with the time the socket
was seen, and a lookup is attributed only when one of its client ports was seen held in its
time window. The psutil table scan (at most once a second) stays as the fallback when
netlink is not available.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TypedDict

from toolkit.capture.dnswire import Transport
from toolkit.capture.libraries import ResolverLibrary, read_library
from toolkit.capture.localaddrs import LocalAddresses
from toolkit.capture.records import ProcessInfo
from toolkit.errors import best_effort

REFRESH_MIN_S = 1.0  # a full psutil socket table scan costs 10-50 ms: at most once a second
MAX_CACHE = 4096
PIDS_EVERY_S = 0.25  # re-list /proc for new processes in this network namespace
MAX_SOCKETS = 65536  # remembered (address, port, transport) -> owner entries
SLACK_S = 0.05  # a socket seen up to this long before/after a lookup's packets
OWNERS_PER_PORT = 4  # sockets remembered per client port: enough to see a reuse within a lookup

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST = 0x1
NLMSG_ERROR = 2
_NLH = struct.Struct("=IHHII")
_MSG = struct.Struct("=BBBB2s2s16s16sIQIIIII")  # struct inet_diag_msg
_NOCOOKIE = b"\xff" * 8  # INET_DIAG_NOCOOKIE
_PROTO = {Transport.UDP: socket.IPPROTO_UDP, Transport.TCP: socket.IPPROTO_TCP}
WATCH_NICE = -10
HINTS = 32  # (pid, fd) pairs that held a DNS socket before: checked first


class WhoStats(TypedDict):
    """How who-asked went in a live capture (the report's ``who_asked`` object)."""

    method: str  # "sock_diag+procfs" or "psutil"
    watch_error: str | None
    client_sockets: int
    sockets_with_process: int
    sockets_closed_first: int
    sockets_no_owner: int
    queries_not_local: int  # from no address of this namespace: not looked up (localaddrs.py)
    cpu_s: float
    psutil_scans: int
    look_delay_ms_p50: float | None
    look_delay_ms_p90: float | None
    priority: str


class _Held:
    """One socket seen held by a process: from ``first`` to ``last`` (capture time)."""

    __slots__ = ("pid", "first", "last", "inode")

    def __init__(self, pid: int, first: float, last: float, inode: int) -> None:
        self.pid = pid
        self.first = first
        self.last = last
        self.inode = inode


class SockDiag:
    """One-socket inet_diag lookups: (local, remote) 4-tuple -> socket inode.

    A dump (``ss``) walks the kernel's whole UDP/TCP hash tables, shared by every network
    namespace: 0.8 ms per dump on the lab machine, so polling dumps fast enough to see a
    socket that lives 0.3 ms would take a core. An exact lookup (no NLM_F_DUMP) is one hash
    lookup in the kernel. Hand-written: pyroute2's DiagSocket offers dumps only."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG)
        self.sock.settimeout(0.5)
        self.seq = 0
        # udp_dump_one() looks the socket up as a packet *from* idiag_src would be
        # (linux/net/ipv4/udp_diag.c), inet_diag_find_one_icsk() the other way round: learn
        # which order this kernel wants from the first hit, and before any from sockets of our
        # own (learn_order): until then every miss (a socket closed before the look, most of
        # glibc's at high rates) costs both orders, two netlink round trips.
        self.order: dict[str, bool] = {}
        self.learn_order()

    def learn_order(self) -> None:
        """Look up a connected UDP socket and a TCP connection of our own on loopback, so the
        lookup order per transport is known before the first query (best effort: without
        loopback the first hit still teaches it)."""
        opened: list[socket.socket] = []
        try:
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            opened.append(udp)
            udp.connect(("127.0.0.1", 9))  # no packet: a UDP connect only sets the peer
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            opened.append(listener)
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            tcp = socket.create_connection(listener.getsockname(), timeout=0.5)
            opened.append(tcp)
            for sock, transport in ((udp, Transport.UDP), (tcp, Transport.TCP)):
                (local, lport), (remote, rport) = sock.getsockname(), sock.getpeername()
                self.find(transport, local, lport, remote, rport)
        except OSError:
            pass
        finally:
            for sock in opened:
                sock.close()

    def close(self) -> None:
        """Close the netlink socket."""
        self.sock.close()

    def _one(self, family: int, proto: int, src: bytes, sport: int, dst: bytes, dport: int) -> int | None:
        """One SOCK_DIAG_BY_FAMILY request (linux/inet_diag.h), its idiag_inode or None."""
        self.seq += 1
        sockid = (sport.to_bytes(2, "big") + dport.to_bytes(2, "big") + src.ljust(16, b"\0")
                  + dst.ljust(16, b"\0") + b"\0\0\0\0" + _NOCOOKIE)
        body = struct.pack("=BBBxI", family, proto, 0, 0xFFFFFFFF) + sockid
        self.sock.send(_NLH.pack(_NLH.size + len(body), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST, self.seq, 0) + body)
        data = self.sock.recv(8192)
        if len(data) < _NLH.size + _MSG.size:
            return None
        _len, mtype, _f, _seq, _pid = _NLH.unpack_from(data, 0)
        if mtype == NLMSG_ERROR:
            return None
        inode: int = _MSG.unpack_from(data, _NLH.size)[-1]
        return inode or None

    def find(self, transport: Transport, local: str, lport: int, remote: str, rport: int) -> int | None:
        """The inode of the socket ``local:lport`` <-> ``remote:rport``, or None when it is closed."""
        family = socket.AF_INET6 if ":" in local else socket.AF_INET
        lo, re_ = socket.inet_pton(family, local), socket.inet_pton(family, remote)
        proto = _PROTO[transport]
        known = self.order.get(transport)
        for local_first in ((known,) if known is not None else (True, False)):
            args = (lo, lport, re_, rport) if local_first else (re_, rport, lo, lport)
            inode = self._one(family, proto, *args)
            if inode:
                self.order[transport] = local_first
                return inode
        return None


class SocketFinder:
    """Client socket seen on the wire -> the process that holds it, while it is still open."""

    def __init__(self, *, clock: Callable[[], float] = time.time, local: LocalAddresses | None = None) -> None:
        self.clock = clock
        self.diag = SockDiag()
        self.local = local if local is not None else LocalAddresses()
        self.not_local = 0  # queries from another namespace's address: no socket of ours (localaddrs.py)
        # (address, port, transport) -> the sockets seen on it, oldest first
        self.owners: OrderedDict[tuple[str, int, str], list[_Held]] = OrderedDict()
        self._inode_pid: OrderedDict[int, int | None] = OrderedDict()
        self._recent_pids: OrderedDict[int, None] = OrderedDict()  # pids that owned a DNS socket
        self._hints: OrderedDict[tuple[int, int], None] = OrderedDict()  # (pid, fd) that did
        self.info: dict[int, tuple[str, str]] = {}  # pid -> (comm, cmdline), read when first seen
        self.libraries: dict[int, ResolverLibrary | None] = {}  # pid -> its resolver library
        self._netns = _readlink("/proc/self/ns/net")
        self._ns_pids: list[int] = []
        self._pid_ns: dict[int, bool] = {}
        self._pids_at = -1e18
        self.sockets = self.found = self.gone = self.no_owner = 0
        self.delays: list[float] = []
        self.cpu_s = 0.0

    def close(self) -> None:
        """Stop looking (closes the sock_diag socket)."""
        self.diag.close()

    def saw_query(self, src: str, sport: int, dst: str, dport: int, transport: Transport, ts: float) -> None:
        """A query left ``src:sport``: find its socket and owner now, before it closes.

        Every query is looked up (one exact sock_diag request, microseconds), never skipped
        because the port was seen a moment ago: ephemeral ports recur within a second across
        processes (a few hundred sockets in a 28k-port range collide by the birthday bound),
        and extending the earlier owner's window would name the wrong process."""
        if src not in self.local:
            self.not_local += 1
            return
        key = (src, sport, transport)
        t0 = time.thread_time()
        try:
            inode = self.diag.find(transport, src, sport, dst, dport)
            hist = self.owners.get(key)
            if inode is not None and hist and hist[-1].inode == inode:
                hist[-1].last = max(hist[-1].last, ts)  # the same socket again (A then AAAA, a retry)
                return
            self.sockets += 1
            if len(self.delays) < 4096:
                self.delays.append(time.time() - ts)  # packet sent -> we look: the race to win
            if inode is None:
                self.gone += 1  # closed before we looked: stays unattributed
                return
            pid = self._owner(inode)
            if pid is None:
                self.no_owner += 1  # another network namespace's process, or no access
                return
            self.found += 1
            if hist is None:
                hist = self.owners[key] = []
            hist.append(_Held(pid, ts, ts, inode))
            del hist[:-OWNERS_PER_PORT]
            self.owners.move_to_end(key)
            if len(self.owners) > MAX_SOCKETS:
                self.owners.popitem(last=False)
        except OSError:
            pass
        finally:
            self.cpu_s += time.thread_time() - t0

    def _owner(self, inode: int) -> int | None:
        """The pid holding socket ``inode``: fds that held DNS sockets before (glibc reuses
        the lowest free fd), then the fds of known askers, then the rest of this network
        namespace. Every socket inode met on the way is remembered."""
        if inode in self._inode_pid:
            return self._inode_pid[inode]
        target = f"socket:[{inode}]"
        for pid, fd in reversed(self._hints):
            if _readlink(f"/proc/{pid}/fd/{fd}") == target:
                self._hit(pid, fd)
                return pid
        now = self.clock()
        if now - self._pids_at >= PIDS_EVERY_S:
            self._refresh_pids(now)
        tried: set[int] = set()
        for pid in list(reversed(self._recent_pids)) + self._ns_pids:
            if pid in tried:
                continue
            tried.add(pid)
            try:
                with os.scandir(f"/proc/{pid}/fd") as it:
                    for e in it:
                        try:
                            link = os.readlink(e.path)
                        except OSError:
                            continue
                        if link == target:
                            self._remember(inode, pid)
                            self._hit(pid, int(e.name))
                            return pid
            except OSError:
                continue
        return None

    def _hit(self, pid: int, fd: int) -> None:
        if pid not in self.info:
            # read now: the asker may exit before the lookup is reported
            self.info[pid] = (_read(f"/proc/{pid}/comm").strip(),
                              _read(f"/proc/{pid}/cmdline").replace("\0", " ").strip()[:300])
            self.libraries[pid] = read_library(pid)
            if len(self.info) > MAX_CACHE:
                self.libraries.pop(next(iter(self.info)), None)
                self.info.pop(next(iter(self.info)))
        self._recent_pids[pid] = None
        self._recent_pids.move_to_end(pid)
        if len(self._recent_pids) > 64:
            self._recent_pids.popitem(last=False)
        self._hints[(pid, fd)] = None
        self._hints.move_to_end((pid, fd))
        if len(self._hints) > HINTS:
            self._hints.popitem(last=False)

    def _remember(self, inode: int, pid: int | None) -> None:
        self._inode_pid[inode] = pid
        if len(self._inode_pid) > MAX_SOCKETS:
            self._inode_pid.popitem(last=False)

    def _refresh_pids(self, now: float) -> None:
        self._pids_at = now
        pids = []
        try:
            names = os.listdir("/proc")
        except OSError:
            return
        for name in names:
            if not name.isdigit():
                continue
            pid = int(name)
            ok = self._pid_ns.get(pid)
            if ok is None:
                ok = self._pid_ns[pid] = _readlink(f"/proc/{pid}/ns/net") == self._netns
            if ok:
                pids.append(pid)
        if len(self._pid_ns) > 4 * MAX_CACHE:
            self._pid_ns = {p: True for p in pids}
        # newest first: a process that just started is the likeliest new asker
        self._ns_pids = sorted(pids, reverse=True)

    def owner(self, ip: str, port: int, transport: str, first: float | None, last: float | None) -> int | None:
        """The process that held the port while the lookup ran; None when none was seen
        then, or when two processes held it within the lookup's time (never a guess)."""
        hist = self.owners.get((ip, port, transport))
        if not hist:
            return None
        if first is None or last is None:
            pids = {h.pid for h in hist}
        else:
            pids = {h.pid for h in hist if not (h.first > last + SLACK_S or h.last < first - SLACK_S)}
        return next(iter(pids)) if len(pids) == 1 else None


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    return round(v[min(len(v) - 1, int(q * len(v)))] * 1000.0, 3)


def _read(path: str) -> str:
    try:
        with open(path, "rb") as fh:
            return fh.read(4096).decode("utf-8", "replace")
    except OSError:
        return ""


def _readlink(path: str) -> str | None:
    try:
        return os.readlink(path)
    except OSError:
        return None


class WhoAsked:
    """Callable ``(local_ip, local_port, transport[, first_ts, last_ts]) -> ProcessInfo | None``.

    ``start(ports)`` begins the sock_diag watch for short-lived sockets (live capture only);
    without it (or without netlink) only the psutil scan answers."""

    def __init__(self, *, refresh_min_s: float = REFRESH_MIN_S, clock: Callable[[], float] = time.monotonic,
                 watch: bool = True) -> None:
        self.refresh_min_s = refresh_min_s
        self.clock = clock
        self._table: dict[tuple[str, int, str], int] = {}
        self._procs: OrderedDict[int, ProcessInfo | None] = OrderedDict()
        self._last = -1e18
        self.available = True
        self.denied = False
        self.refreshes = 0
        self.want_watch = watch
        self.watch: SocketFinder | None = None
        self.watch_error: str | None = None
        self.asked = self.answered = 0
        self._old_nice: int | None = None
        self.priority = "unchanged"

    def start(self) -> None:
        """Live capture: look every new client socket up while it is open (``saw_query``)."""
        if not self.want_watch or self.watch is not None:
            return
        try:
            self.watch = SocketFinder()
        except OSError as exc:
            self.watch = None
            self.watch_error = exc.strerror or str(exc)
            return
        # The socket must still be open when the capture reads its first packet. On a busy
        # node the reader waits for a CPU 2-5 ms (measured in the lab), longer than glibc's
        # socket lives; at nice -10 it waits about 40 us. CFS stays fair (a weight, not a
        # real-time class: never starves the pod). Needs CAP_SYS_NICE; without it the
        # priority stays and the stats say so.
        if os.environ.get("PODTRIAGE_WHO_NICE", "1") != "0":
            try:
                self._old_nice = os.getpriority(os.PRIO_PROCESS, 0)
                if self._old_nice > WATCH_NICE:
                    os.setpriority(os.PRIO_PROCESS, 0, WATCH_NICE)
                    self.priority = f"nice {WATCH_NICE}"
            except OSError:
                self._old_nice = None
                self.priority = "unchanged (no CAP_SYS_NICE)"

    def saw_query(self, src: str, sport: int, dst: str, dport: int, transport: Transport, ts: float) -> None:
        """A query left a client socket (live capture): look its owner up while it is open."""
        if self.watch is not None:
            self.watch.saw_query(src, sport, dst, dport, transport, ts)

    def stop(self) -> None:
        """End the watch and restore the process priority (idempotent)."""
        if self.watch is not None:
            self.watch.close()
        if self._old_nice is not None:
            try:
                os.setpriority(os.PRIO_PROCESS, 0, self._old_nice)
            except OSError:
                pass
            self._old_nice = None

    def stats(self) -> WhoStats:
        """How the attribution went: the report's ``who_asked`` object."""
        w = self.watch
        return {"method": "sock_diag+procfs" if w is not None else "psutil",
                "watch_error": self.watch_error,
                "client_sockets": w.sockets if w else 0, "sockets_with_process": w.found if w else 0,
                "sockets_closed_first": w.gone if w else 0, "sockets_no_owner": w.no_owner if w else 0,
                "queries_not_local": w.not_local if w else 0,
                "cpu_s": round(w.cpu_s, 3) if w else 0.0, "psutil_scans": self.refreshes,
                "look_delay_ms_p50": _pct(w.delays, 0.5) if w else None,
                "look_delay_ms_p90": _pct(w.delays, 0.9) if w else None,
                "priority": self.priority}

    def refresh(self) -> None:
        """The psutil fallback: rescan the socket table (at most every ``refresh_min_s``)."""
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
        """Name and command line of ``pid`` (None when it is gone or hidden from us)."""
        if pid in self._procs:
            return self._procs[pid]
        with best_effort(None, f"reading process {pid}") as reading:  # NoSuchProcess, AccessDenied, ImportError
            import psutil

            p = psutil.Process(pid)
            with p.oneshot():
                name = p.name()
                try:
                    cmd = " ".join(p.cmdline())[:300]
                except (psutil.AccessDenied, psutil.ZombieProcess):
                    cmd = ""
            info = ProcessInfo(pid, name, cmd, library=read_library(pid))
        if reading.failed:
            return None  # gone (short-lived): not cached, a later call may not know either
        self._procs[pid] = info
        if len(self._procs) > MAX_CACHE:
            self._procs.popitem(last=False)
        return info

    def __call__(self, ip: str, port: int, transport: str = Transport.UDP, first: float | None = None,
                 last: float | None = None) -> ProcessInfo | None:
        """The process that held ``ip:port`` between ``first`` and ``last`` (capture time)."""
        self.asked += 1
        if not self.available:
            return None
        pid = None
        if self.watch is not None:
            # Only what the watch saw open at that time: a table scan now could name
            # whoever holds the port today (ports are reused within seconds).
            pid = self.watch.owner(ip, port, transport, first, last)
        else:
            pid = self._table.get((ip, port, transport)) or self._table.get(("*", port, transport))
            if pid is None and self.clock() - self._last >= self.refresh_min_s:
                self.refresh()
                pid = self._table.get((ip, port, transport)) or self._table.get(("*", port, transport))
        if pid is None:
            return None
        info = None
        if self.watch is not None and pid in self.watch.info:
            name, cmd = self.watch.info[pid]
            info = ProcessInfo(pid, name, cmd, library=self.watch.libraries.get(pid)) if name else None
        if info is None:
            info = self.process(pid)
        if info is not None:
            self.answered += 1
        return info
