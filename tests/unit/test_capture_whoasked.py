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

from toolkit.capture import synth as S
from toolkit.capture.analysis import Analyzer
from toolkit.capture.config import AnalyzerConfig
from toolkit.capture.dnswire import parse_dns
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


def _declared_arity(t: typing.Any) -> int:
    """How many arguments a declared callable type takes (Callable[[...], R] or a Protocol)."""
    if typing.get_origin(t) is collections.abc.Callable:
        return len(typing.get_args(t)[0])
    return len(inspect.signature(t.__call__).parameters) - 1  # a Protocol's __call__, without self


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
    hint = typing.get_type_hints(Analyzer.__init__)["who"]
    declared = next(a for a in typing.get_args(hint) if a is not type(None))
    assert _declared_arity(declared) == len(calls[0])
    inspect.signature(WhoAsked.__call__).bind(WhoAsked, *calls[0])  # the real one takes the same call
