"""Who asked: sock_diag + /proc finds the process holding a client socket while it is open,
and never names a process for a port it was not seen holding at that time. A connected UDP
socket to 127.0.0.1:53 sends nothing: no traffic leaves the test."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

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
