"""Who asked: sock_diag + /proc finds the process holding a client socket while it is open,
and never names a process for a port it was not seen holding at that time. A connected UDP
socket to 127.0.0.1:53 sends nothing: no traffic leaves the test."""

from __future__ import annotations

import collections.abc
import inspect
import socket
import subprocess
import sys
import time
import typing
from pathlib import Path

from toolkit.capture import synth as S
from toolkit.capture.analysis import Analyzer
from toolkit.capture.config import AnalyzerConfig
from toolkit.capture.dnswire import Transport, parse_dns
from toolkit.capture.records import ProcessInfo
from toolkit.capture.whoasked import SocketFinder, WhoAsked

CHILD = """
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect(("127.0.0.1", 53))
print(s.getsockname()[1], flush=True)
sys.stdin.readline()
"""


def test_finds_the_process_of_an_open_socket_and_only_in_its_time():
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        port = int(child.stdout.readline())
        who = WhoAsked()
        who.start()
        assert who.watch is not None, who.watch_error
        now = time.time()
        who.saw_query("127.0.0.1", port, "127.0.0.1", 53, "udp", now)
        info = who("127.0.0.1", port, "udp", now, now + 0.01)
        assert info is not None and info.pid == child.pid and info.name.startswith("python")
        # the same port an hour later (or before): not this process, as far as anyone knows
        assert who("127.0.0.1", port, "udp", now + 3600, now + 3601) is None
        assert who("127.0.0.1", port + 1 if port < 65535 else port - 1, "udp", now, now) is None
        st = who.stats()
        assert st["sockets_with_process"] == 1 and st["method"] == "sock_diag+procfs"
        who.stop()
    finally:
        child.stdin.close()
        child.wait(timeout=10)


def test_a_socket_closed_before_the_look_stays_unattributed():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect(("127.0.0.1", 53))
    port = s.getsockname()[1]
    s.close()
    finder = SocketFinder()
    try:
        now = time.time()
        finder.saw_query("127.0.0.1", port, "127.0.0.1", 53, "udp", now)
        assert finder.gone == 1 and finder.owner("127.0.0.1", port, "udp", now, now) is None
    finally:
        finder.close()


def test_sock_diag_tells_a_connected_socket_from_an_unconnected_one():
    """The kernel's own answer (idiag_dport): glibc-style connect(2)ed UDP socket vs a
    musl-style one bound and sent from with sendto(2). Both match a lookup of the query's
    4-tuple; only the first has a peer. Nothing is sent."""
    from toolkit.capture.sockdiag import SockDiag

    conn = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    free = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    diag = SockDiag()
    try:
        conn.connect(("127.0.0.1", 53))
        free.bind(("127.0.0.1", 0))
        for sock, connected in ((conn, True), (free, False)):
            port = sock.getsockname()[1]
            assert diag.find(Transport.UDP, "127.0.0.1", port, "127.0.0.1", 53) is not None
            assert diag.connected is connected
    finally:
        diag.close()
        conn.close()
        free.close()


def _stub_finder(inode: int, pid: int, connected: bool = False) -> SocketFinder:
    """A SocketFinder whose every look finds ``inode``, held by ``pid`` (no real socket);
    ``connected``: that socket has a peer (glibc's and Go's do, musl's does not)."""
    finder = SocketFinder()
    finder.diag.find = lambda *_a: inode  # type: ignore[method-assign]
    finder.diag.connected = connected
    finder._owner = lambda _inode: pid  # type: ignore[method-assign]
    return finder


def test_a_port_taken_over_before_the_look_names_nobody():
    """glibc asks from port 40000 and closes its socket on the answer; static musl binds the
    same port at once and asks too (a CI run saw it). The capture looked glibc's query up
    only after its answer had come, and found musl's socket: that look proves nothing, so
    glibc's lookup names nobody (musl's socket is not connected: any newcomer on the port
    matches it); musl's own lookup (looked up before its answer) names musl."""
    finder = _stub_finder(900, 222)
    try:
        t = time.time()
        g_q, g_a = t - 0.0100, t - 0.0097  # glibc's query and its answer: both before the look
        finder.saw_query("127.0.0.1", 40000, "127.0.0.1", 53, Transport.UDP, g_q, 0x1111, True)
        finder.saw_answer("127.0.0.1", 40000, Transport.UDP, 0x1111, g_a)
        m_q = time.time()
        finder.saw_query("127.0.0.1", 40000, "127.0.0.1", 53, Transport.UDP, m_q, 0x2222, True)
        m_a = time.time() + 0.0003  # musl's answer comes after the look
        finder.saw_answer("127.0.0.1", 40000, Transport.UDP, 0x2222, m_a)
        assert finder.owner("127.0.0.1", 40000, "udp", g_q, g_a) is None
        assert finder.owner("127.0.0.1", 40000, "udp", m_q, m_a) == 222
        assert finder.late == 1 and finder.found == 1
    finally:
        finder.close()


def test_a_connected_socket_seen_after_the_answer_counts_unless_the_port_sends_again():
    """A busy node: the capture looked only after the answer had come, and found a connected
    socket (glibc connects its sockets) in the moment before the asker closed it. No query
    left that port afterwards, so no newcomer took it: the look counts. On another port a
    query leaves after the answer: that sender bound the port anew (glibc connects too), so
    the earlier look may have found the newcomer's socket: it is dropped, and the newcomer's
    own lookup names it."""
    finder = _stub_finder(904, 666, connected=True)
    try:
        t = time.time()
        finder.saw_query("127.0.0.1", 40006, "127.0.0.1", 53, Transport.UDP, t - 0.002, 21, True)
        finder.saw_answer("127.0.0.1", 40006, Transport.UDP, 21, t - 0.0017)
        assert finder.owner("127.0.0.1", 40006, "udp", t - 0.002, t - 0.0017) == 666
        assert finder.late == 1 and finder.late_dropped == 0

        q1, a1 = t - 0.0010, t - 0.0007
        finder.saw_query("127.0.0.1", 40007, "127.0.0.1", 53, Transport.UDP, q1, 22, True)
        finder.saw_answer("127.0.0.1", 40007, Transport.UDP, 22, a1)
        assert finder.owner("127.0.0.1", 40007, "udp", q1, a1) == 666  # until evidence comes
        q2 = time.time()  # the ring's copy of the newcomer's query (hint path: saw_sent)
        finder.saw_sent("127.0.0.1", 40007, Transport.UDP, 23, q2)
        assert finder.owner("127.0.0.1", 40007, "udp", q1, a1) is None
        assert finder.late == 2 and finder.late_dropped == 1
        finder.saw_query("127.0.0.1", 40007, "127.0.0.1", 53, Transport.UDP, q2, 23, True)
        a2 = time.time() + 0.0003
        finder.saw_answer("127.0.0.1", 40007, Transport.UDP, 23, a2)
        assert finder.owner("127.0.0.1", 40007, "udp", q2, a2) == 666
    finally:
        finder.close()


def test_a_hinted_look_gets_the_packets_own_time():
    """Through the query socket beside the ring the look knows only when it read the hint
    (later than the packet); the ring's copy of the query gives the kernel stamp, so the
    socket is named exactly for its own lookup, not for one that ended a moment before."""
    finder = _stub_finder(901, 333)
    try:
        sent = time.time()
        earlier = (sent - 0.004, sent - 0.001)  # another lookup on the port that just ended
        finder.saw_query("127.0.0.1", 40001, "127.0.0.1", 53, Transport.UDP, time.time(), 7)
        assert finder.owner("127.0.0.1", 40001, "udp", *earlier) == 333  # a read time: slack
        finder.saw_sent("127.0.0.1", 40001, Transport.UDP, 7, sent)
        finder.saw_answer("127.0.0.1", 40001, Transport.UDP, 7, time.time() + 0.001)
        assert finder.owner("127.0.0.1", 40001, "udp", *earlier) is None
        assert finder.owner("127.0.0.1", 40001, "udp", sent, sent + 0.001) == 333
    finally:
        finder.close()


def test_an_unanswered_query_keeps_its_look_and_tcp_needs_no_answer():
    """No answer (the nameserver is silent: the incident this tool is for) means the asker
    was still waiting with its socket open: the look stands. TCP looks stand at once."""
    finder = _stub_finder(902, 444)
    try:
        q = time.time()
        finder.saw_query("127.0.0.1", 40002, "127.0.0.1", 53, Transport.UDP, q, 9, True)
        finder.saw_query("127.0.0.1", 40003, "127.0.0.1", 53, Transport.TCP, q, None, True)
        assert finder.owner("127.0.0.1", 40002, "udp", q, q + 5) == 444
        assert finder.owner("127.0.0.1", 40003, "tcp", q, q) == 444
        assert finder.owner("127.0.0.1", 40002, "udp", q + 60, q + 61) is None
    finally:
        finder.close()


def test_a_late_look_stands_only_if_its_answer_comes_after_it():
    """The hint reader fell behind the ring (hints.py ``late``): the query's answer may have
    been handed over before the look, unseen by it. Such a look never stands on its own: an
    unanswered late look names nobody; one whose answer still comes after it counts."""
    finder = _stub_finder(903, 555)
    try:
        q = time.time()
        finder.saw_query("127.0.0.1", 40004, "127.0.0.1", 53, Transport.UDP, q, 11, False, True)
        assert finder.owner("127.0.0.1", 40004, "udp", q, q) is None
        finder.saw_query("127.0.0.1", 40005, "127.0.0.1", 53, Transport.UDP, q, 12, False, True)
        finder.saw_answer("127.0.0.1", 40005, Transport.UDP, 12, time.time() + 0.001)
        assert finder.owner("127.0.0.1", 40005, "udp", q, q) == 555
    finally:
        finder.close()


def _declared_arity(t: typing.Any) -> int:
    """How many arguments a declared callable type takes (Callable[[...], R] or a Protocol)."""
    if typing.get_origin(t) is collections.abc.Callable:
        return len(typing.get_args(t)[0])
    return len(inspect.signature(t.__call__).parameters) - 1  # a Protocol's __call__, without self


def _declared_arity_in_source() -> int:
    """The same from the source: a module compiled by mypyc keeps no annotations at run time
    (and a compiled Protocol's ``__call__`` takes ``*args``)."""
    import ast

    from toolkit.capture import analysis, chains

    def tree(mod):
        return ast.parse((Path(mod.__file__).parent / (mod.__name__.rsplit(".", 1)[1] + ".py")).read_text())

    funcs = [n for n in ast.walk(tree(analysis)) if isinstance(n, ast.FunctionDef) and n.name == "__init__"]
    (arg,) = [a for f in funcs for a in f.args.args + f.args.kwonlyargs if a.arg == "who"]
    assert ast.unparse(arg.annotation) == "WhoAsks | None"
    (proto,) = [n for n in ast.walk(tree(chains)) if isinstance(n, ast.ClassDef) and n.name == "WhoAsks"]
    (call,) = [n for n in proto.body if isinstance(n, ast.FunctionDef) and n.name == "__call__"]
    return len(call.args.posonlyargs + call.args.args) - 1  # without self


def test_the_analyzer_asks_who_with_the_lookups_time_window_as_declared():
    """``who`` was declared with three parameters (address, port, transport) and called with
    five (and the lookup's first and last packet time, which WhoAsked needs: a port names a
    process only for a socket seen open in that window). The declaration now says five."""
    calls = []

    def who(ip, port, transport, first, last):  # all five required, as the analyzer passes them
        calls.append((ip, port, transport, first, last))
        return ProcessInfo(4242, "app")

    an = Analyzer(AnalyzerConfig(), who=who)
    an.feed(parse_dns(S.dns_query(7, "api.example", 1), 100.0, "10.0.0.5", "10.0.0.53", 40000, 53, "udp"))
    an.feed(parse_dns(S.dns_response(7, "api.example", 1, addresses=("10.1.1.1",)), 100.001,
                      "10.0.0.53", "10.0.0.5", 53, 40000, "udp"))
    an.finish()
    s = an.summary()
    assert calls == [("10.0.0.5", 40000, "udp", 100.0, 100.001)]
    assert s.lookups[0].process == ProcessInfo(4242, "app") and s.lookups_attributed == 1
    try:
        hint = typing.get_type_hints(Analyzer.__init__)["who"]
        declared = next(a for a in typing.get_args(hint) if a is not type(None))
        arity = _declared_arity(declared)
    except (AttributeError, KeyError, TypeError):
        arity = _declared_arity_in_source()  # compiled by mypyc (scripts/build-mypyc)
    assert arity == len(calls[0])
    inspect.signature(WhoAsked.__call__).bind(WhoAsked, *calls[0])  # the real one takes the same call
