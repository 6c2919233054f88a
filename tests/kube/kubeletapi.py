"""The kubelet API of the stand-in: what kube-apiserver proxies ``kubectl logs`` to.

HTTPS on the node's addresses, port 10250 (the Node's ``daemonEndpoints``), with the
serving certificate the lab made for the node (the API server checks it against the lab CA:
``--kubelet-certificate-authority``) and client certificates required (the API server's
``--kubelet-client-certificate``; a real kubelet also asks the API server whether that user
may read logs, a SubjectAccessReview: here, a certificate of the lab CA suffices).

    GET /containerLogs/{namespace}/{pod}/{container}?follow=true&tailLines=N&limitBytes=N
    GET /healthz

``follow`` streams the log (chunked) until the container has ended and its log is read
to the end, as the kubelet does; a container that has not started yet is a 400 with the
kubelet's wording ("is waiting to start"), one the pod does not have a 404.
"""
from __future__ import annotations

import http.server
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

PORT = 10250


@dataclass(frozen=True)
class LogSource:
    """What the API needs of one container: its log file, whether it still runs (more may
    come), and why there is no log yet."""

    path: Path | None
    running: Callable[[], bool]
    waiting: str = ""            # the waiting reason when the container has not started


Lookup = Callable[[str, str, str], "LogSource | None"]


def _tail(data: bytes, lines: int) -> bytes:
    if lines < 0:
        return data
    parts = data.splitlines(keepends=True)
    return b"".join(parts[-lines:]) if lines else b""


class _Handler(http.server.BaseHTTPRequestHandler):
    server_version = "kubelet-standin"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):      # quiet: the kubelet's log is for its own lines
        pass

    def _error(self, code: int, message: str) -> None:
        body = message.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _chunk(self, data: bytes) -> None:
        if data:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

    def do_GET(self):  # noqa: N802 - http.server's name
        url = urlsplit(self.path)
        q = {k: v[-1] for k, v in parse_qs(url.query).items()}
        parts = [unquote(p) for p in url.path.split("/") if p]
        if parts == ["healthz"]:
            return self._error(200, "ok")
        if len(parts) != 4 or parts[0] != "containerLogs":
            return self._error(404, "404 page not found")
        ns, pod, container = parts[1:]
        if q.get("previous") in ("true", "1"):
            return self._error(400, 'previous terminated container "%s" in pod "%s" not found'
                               % (container, pod))
        src = self.server.lookup(ns, pod, container)
        if src is None:
            return self._error(404, 'container "%s" in pod "%s" not found' % (container, pod))
        if src.path is None or not src.path.exists():
            return self._error(400, 'container "%s" in pod "%s" is waiting to start: %s'
                               % (container, pod, src.waiting or "ContainerCreating"))
        follow = q.get("follow") in ("true", "1")
        try:
            tail = int(q.get("tailLines", "-1"))
            limit = int(q.get("limitBytes", "0")) or None
        except ValueError:
            return self._error(400, "bad tailLines or limitBytes")
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        sent = 0
        try:
            with open(src.path, "rb") as f:
                data = _tail(f.read(), tail)
                while True:
                    if limit is not None:
                        data = data[:max(0, limit - sent)]
                    self._chunk(data)
                    sent += len(data)
                    if not follow or (limit is not None and sent >= limit):
                        break
                    if not src.running():
                        self._chunk(f.read())       # what came between the last read and the end
                        break
                    time.sleep(0.1)
                    data = f.read()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            self.close_connection = True


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    lookup: Lookup

    def __init__(self, addr, handler, family):
        self.address_family = family
        super().__init__(addr, handler)


class KubeletApi:
    """The HTTPS servers, one per node address."""

    def __init__(self, addresses: list[str], cert: Path, key: Path, client_ca: Path,
                 lookup: Lookup, port: int = PORT):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(cert), str(key))
        ctx.load_verify_locations(str(client_ca))
        ctx.verify_mode = ssl.CERT_REQUIRED
        self.servers: list[_Server] = []
        for a in addresses:
            family = socket.AF_INET6 if ":" in a else socket.AF_INET
            srv = _Server((a, port), _Handler, family)
            srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
            srv.lookup = lookup
            self.servers.append(srv)

    def start(self) -> "KubeletApi":
        for s in self.servers:
            threading.Thread(target=s.serve_forever, daemon=True, name="kubelet-api").start()
        return self

    def stop(self) -> None:
        for s in self.servers:
            s.shutdown()
            s.server_close()
