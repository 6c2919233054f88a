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

A look that comes after the query's answer proves nothing: the asker may have closed its
socket on the answer, and another process bound the same ephemeral port before the look
(ports recur: a CI run named a glibc program's lookup after the static musl program that
asked at the same time). So every UDP look waits for its query's answer (same port and DNS
ID): looked before the answer arrived, the socket found was the asker's (it was waiting for
that answer). A query never answered keeps its look: its socket was waiting. A look after
the answer (a busy node: the capture waited for a CPU longer than the round trip) may still
have found the asker's socket in the moment before it closed; it is kept only when a
newcomer is ruled out: the socket found is connected (glibc and Go connect theirs to the
nameserver; musl's and most other programs' sockets are not, and an unconnected socket bound
to the port matches any remote), and no query leaves that port after the answer (a newcomer
binds the port to send one). Otherwise it is dropped (``looks_after_answer_dropped``).
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TypedDict

from toolkit.capture.dnswire import Transport
from toolkit.capture.libraries import ResolverLibrary, read_library
from toolkit.capture.localaddrs import LocalAddresses
from toolkit.capture.records import ProcessInfo
from toolkit.capture.sockdiag import SockDiag
from toolkit.errors import best_effort

REFRESH_MIN_S = 1.0  # a full psutil socket table scan costs 10-50 ms: at most once a second
MAX_CACHE = 4096
PIDS_EVERY_S = 0.25  # re-list /proc for new processes in this network namespace
MAX_SOCKETS = 65536  # remembered (address, port, transport) -> owner entries
SLACK_S = 0.05  # a socket seen (by a hint's read time) up to this long before/after a lookup's packets
EXACT_SLACK_S = 1e-6  # the same kernel stamp on both sides: only float rounding
OWNERS_PER_PORT = 4  # sockets remembered per client port: enough to see a reuse within a lookup
MAX_PENDING = 65536  # looks waiting for their query's answer (past it the oldest stand, as if unanswered)
PENDING_PER_SOCKET = 64  # waiting looks remembered per socket (a busy long-lived socket)
UNSETTLED_S = 2.0  # a kept look after its answer is watched this long for a newcomer's query

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
    looks_after_answer: int  # found after the query's answer arrived: the port may be another's now
    looks_after_answer_dropped: int  # of those: a newcomer could not be ruled out
    queries_not_local: int  # from no address of this namespace: not looked up (localaddrs.py)
    cpu_s: float
    psutil_scans: int
    look_delay_ms_p50: float | None
    look_delay_ms_p90: float | None
    priority: str


class _Look:
    """One look for one query: the query's time, whether that time is the packet's own
    (the capture's kernel stamp) or only when its hint was read, when we looked, and whether
    the look may have come after its answer was already handed over (``late``: the hint
    reader was behind the ring; such a look stands only if its answer still comes)."""

    __slots__ = ("held", "qts", "exact", "looked", "late", "connected", "answered")

    def __init__(self, held: _Held, qts: float, exact: bool, looked: float, late: bool = False,
                 connected: bool = False) -> None:
        self.held = held
        self.qts = qts
        self.exact = exact
        self.looked = looked
        self.late = late
        self.connected = connected  # the socket found has a peer (sockdiag.py)
        self.answered = 0.0  # when its answer came (a look kept after it)


class _Held:
    """One socket seen held by a process, at the times of the queries it was looked up for.

    Two spans: ``exact`` from looks whose query time is the packet's kernel stamp (the same
    stamp the lookup's own times come from: compared without slack, so a socket that took
    the port just after a lookup ended is not named for it), ``rough`` from hint read times
    (later than the packet by the look delay: compared with SLACK_S). ``waiting`` holds the
    looks whose answer has not been seen yet: they count (roughly) until an answer that came
    before the look drops one. ``after`` holds looks kept although they came after their
    answer (see the module): they count until a query from the port after that answer
    drops one."""

    __slots__ = ("pid", "inode", "exact", "rough", "waiting", "after")

    def __init__(self, pid: int, inode: int) -> None:
        self.pid = pid
        self.inode = inode
        self.exact: tuple[float, float] | None = None
        self.rough: tuple[float, float] | None = None
        self.waiting: list[_Look] = []
        self.after: list[_Look] = []

    def settle(self, look: _Look) -> None:
        """``look``'s answer will not be seen (it is overdue or crowded out): an unanswered
        query's asker was waiting, so the look stands, unless it was late (see _Look)."""
        self.forget(look)
        if not look.late:
            self.confirm(look)

    def confirm(self, look: _Look) -> None:
        """The socket held the port when the query at ``look.qts`` left."""
        t = look.qts
        span = self.exact if look.exact else self.rough
        span = (t, t) if span is None else (min(span[0], t), max(span[1], t))
        if look.exact:
            self.exact = span
        else:
            self.rough = span

    def forget(self, look: _Look) -> None:
        """``look`` no longer waits (confirmed, or dropped: it came after its answer)."""
        try:
            self.waiting.remove(look)
        except ValueError:
            pass

    def during(self, first: float, last: float) -> bool:
        """Seen holding its port between ``first`` and ``last`` (a lookup's packet times)."""
        ex = self.exact
        if ex is not None and ex[0] <= last + EXACT_SLACK_S and ex[1] >= first - EXACT_SLACK_S:
            return True
        rough = self.rough
        if rough is not None and rough[0] <= last + SLACK_S and rough[1] >= first - SLACK_S:
            return True
        for lk in self.after:
            slack = EXACT_SLACK_S if lk.exact else SLACK_S
            if first - slack <= lk.qts <= last + slack:
                return True
        return any(not lk.late and first - SLACK_S <= lk.qts <= last + SLACK_S for lk in self.waiting)

    def seen(self) -> bool:
        """Some look still stands (every look that came after its answer proves nothing)."""
        return (self.exact is not None or self.rough is not None or bool(self.after)
                or any(not lk.late for lk in self.waiting))


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
        # (address, port, transport, DNS ID) of a UDP query -> its look, until the answer comes
        self.pending: OrderedDict[tuple[str, int, str, int], _Look] = OrderedDict()
        # (address, port, transport) -> looks kept after their answer, until UNSETTLED_S passed
        self.unsettled: OrderedDict[tuple[str, int, str], list[_Look]] = OrderedDict()
        self.sockets = self.found = self.gone = self.no_owner = self.late = self.late_dropped = 0
        self.delays: list[float] = []
        self.cpu_s = 0.0

    def close(self) -> None:
        """Stop looking (closes the sock_diag socket)."""
        self.diag.close()

    def saw_query(self, src: str, sport: int, dst: str, dport: int, transport: Transport, ts: float,
                  txid: int | None = None, exact: bool = False, late: bool = False) -> None:
        """A query left ``src:sport``: find its socket and owner now, before it closes.

        Every query is looked up (one exact sock_diag request, microseconds), never skipped
        because the port was seen a moment ago: ephemeral ports recur within a second across
        processes (a few hundred sockets in a 28k-port range collide by the birthday bound),
        and extending the earlier owner's window would name the wrong process. ``txid`` (the
        query's DNS ID, UDP) lets its answer confirm or drop the look (saw_answer); ``exact``:
        ``ts`` is the packet's kernel stamp (the ring), not a hint's read time; ``late``: the
        answer may have been handed over already (hints.py), so only a later answer confirms."""
        if src not in self.local:
            self.not_local += 1
            return
        key = (src, sport, transport)
        if exact and self.unsettled:
            self._sent_from(key, ts)
        t0 = time.thread_time()
        try:
            inode = self.diag.find(transport, src, sport, dst, dport)
            looked = time.time()
            connected = self.diag.connected
            hist = self.owners.get(key)
            if inode is not None and hist and hist[-1].inode == inode:
                # the same socket again (A then AAAA, a retry)
                self._looked(_Look(hist[-1], ts, exact, looked, late, connected), key, txid)
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
            held = _Held(pid, inode)
            self._looked(_Look(held, ts, exact, looked, late, connected), key, txid)
            hist.append(held)
            del hist[:-OWNERS_PER_PORT]
            self.owners.move_to_end(key)
            if len(self.owners) > MAX_SOCKETS:
                self.owners.popitem(last=False)
        except OSError:
            pass
        finally:
            self.cpu_s += time.thread_time() - t0

    def _looked(self, look: _Look, key: tuple[str, int, str], txid: int | None) -> None:
        """A socket was found for a query: confirmed at once when no answer can tell (TCP: a
        connection outlives its answers; no DNS ID), else when its answer comes (saw_answer)."""
        held = look.held
        if txid is None or key[2] != Transport.UDP:
            held.confirm(look)
            return
        held.waiting.append(look)
        if len(held.waiting) > PENDING_PER_SOCKET:
            held.settle(held.waiting[0])  # its answer is long overdue: the socket waited
        pkey = (*key, txid)
        old = self.pending.pop(pkey, None)
        if old is not None:  # a retry with the same ID: no answer came to the first one
            old.held.settle(old)
        self.pending[pkey] = look
        if len(self.pending) > MAX_PENDING:
            oldest = self.pending.popitem(last=False)[1]
            oldest.held.settle(oldest)

    def saw_sent(self, src: str, sport: int, transport: Transport, txid: int, ts: float) -> None:
        """The ring's copy of a query looked up from its hint: its kernel stamp replaces the
        hint's read time, so the look compares exactly (see _Held). In the ring's order it is
        also the evidence against a look kept after an earlier answer on its port."""
        if self.unsettled:
            self._sent_from((src, sport, transport), ts)
        if self.pending:
            look = self.pending.get((src, sport, transport, txid))
            if look is not None and not look.exact:
                look.qts, look.exact = ts, True

    def saw_answer(self, dst: str, dport: int, transport: Transport, txid: int, ts: float) -> None:
        """An answer reached ``dst:dport`` at ``ts``: the look for its query counts only if it
        came first. Until then the asker was waiting with its socket open (it closes on the
        answer, glibc and musl 0.3 ms later in the lab); a look after it may have found
        another process's new socket on the same port."""
        if not self.pending:
            return
        look = self.pending.pop((dst, dport, transport, txid), None)
        if look is None:
            return
        held = look.held
        held.forget(look)
        if look.looked <= ts:
            held.confirm(look)
            return
        self.late += 1
        if not look.connected or look.late:
            self.late_dropped += 1  # an unconnected socket: any newcomer on the port matches
            return
        look.answered = ts
        held.after.append(look)
        key = (dst, dport, transport)
        kept = self.unsettled.pop(key, None) or []
        kept.append(look)
        self.unsettled[key] = kept  # newest last
        while self.unsettled:  # settled: no newcomer's query came within UNSETTLED_S
            first = next(iter(self.unsettled.values()))
            if ts - first[-1].answered < UNSETTLED_S and len(self.unsettled) <= MAX_PENDING:
                break
            self.unsettled.popitem(last=False)

    def _sent_from(self, key: tuple[str, int, str], ts: float) -> None:
        """A query left ``key``'s port at ``ts`` (the ring's order and stamp): a look kept after
        an answer before ``ts`` may have found this sender's socket, a newcomer: dropped."""
        kept = self.unsettled.get(key)
        if not kept:
            return
        stay = []
        for look in kept:
            if look.answered < ts:
                look.held.after.remove(look)
                self.late_dropped += 1
            else:
                stay.append(look)
        if stay:
            self.unsettled[key] = stay
        else:
            del self.unsettled[key]

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
            pids = {h.pid for h in hist if h.seen()}
        else:
            pids = {h.pid for h in hist if h.during(first, last)}
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

    def saw_query(self, src: str, sport: int, dst: str, dport: int, transport: Transport, ts: float,
                  txid: int | None = None, exact: bool = False, late: bool = False) -> None:
        """A query left a client socket (live capture): look its owner up while it is open."""
        if self.watch is not None:
            self.watch.saw_query(src, sport, dst, dport, transport, ts, txid, exact, late)

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
                "looks_after_answer": w.late if w else 0,
                "looks_after_answer_dropped": w.late_dropped if w else 0,
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
