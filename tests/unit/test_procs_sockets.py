"""toolkit.sysinfo.procs.netns_remotes, the cheap first look of sockets_to: every peer that
psutil.net_connections finds (it reads the same /proc/net files, then every process's file
descriptors) is in it, for real TCP and UDP sockets over IPv4, IPv6 and IPv4-mapped IPv6 on
loopback; and sockets_to still finds the application's socket through psutil."""
from __future__ import annotations

import socket
import subprocess
import sys

import psutil

from toolkit.sysinfo.procs import netns_remotes, sockets_to


def test_remotes_cover_psutil():
    opened: list[socket.socket] = []
    try:
        for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
            srv = socket.socket(family, socket.SOCK_STREAM)
            srv.bind((host, 0))
            srv.listen()
            cli = socket.create_connection((host, srv.getsockname()[1]), timeout=2)
            udp = socket.socket(family, socket.SOCK_DGRAM)
            udp.connect((host, 9))  # connect() on UDP sends nothing: it only sets the peer
            opened += [srv, cli, udp]
        mapped = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        mapped.connect(("::ffff:127.0.0.2", 9))
        opened.append(mapped)
        remotes = netns_remotes()
        assert remotes is not None
        assert {"127.0.0.1", "::1", "127.0.0.2", "::ffff:127.0.0.2"} <= remotes, remotes
        theirs = {c.raddr.ip for c in psutil.net_connections(kind="inet") if c.raddr}
        assert theirs <= remotes, theirs - remotes
    finally:
        for s in opened:
            s.close()


def test_sockets_to_finds_another_process_socket():
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    port = srv.getsockname()[1]
    child = subprocess.Popen([sys.executable, "-c", "import socket, sys, time\n"
                              f"s = socket.create_connection(('127.0.0.1', {port}))\n"
                              "print('up', flush=True); time.sleep(30)"], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline() == "up\n"
        found = sockets_to(["127.0.0.1"])
        assert any(s.pid == child.pid and s.remote == f"127.0.0.1:{port}" and s.status == "ESTABLISHED"
                   for s in found), found
    finally:
        child.kill()
        child.wait()
        srv.close()


def test_sockets_to_skips_psutil_when_no_peer_matches(monkeypatch):
    def boom(**_kw):
        raise AssertionError("psutil.net_connections called although no socket has such a peer")

    monkeypatch.setattr(psutil, "net_connections", boom)
    assert sockets_to(["192.0.2.77"]) == ()


def test_unreadable_proc_net_falls_back_to_psutil(tmp_path):
    assert netns_remotes(str(tmp_path)) is None
