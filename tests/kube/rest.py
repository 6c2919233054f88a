"""A small client of the real Kubernetes API (stdlib only: http.client + ssl + json).

The lab's kube-apiserver listens on an address that exists only inside the lab's network
namespaces. A process already inside one (the kubelet stand-in, run with ``ip netns exec``)
uses ``Client(kubeconfig)`` as it is; a process outside (pytest, ``scripts/lab``) passes
``netns=NAME``: every request then runs on a worker thread that has entered that network
namespace with setns(2) (a per-thread property on Linux; the process itself stays where it
is), so nothing ever listens or connects in the host's namespace.

    c = Client("/run/podtriage-lab/pt/kube/admin.kubeconfig", netns="pt-node")
    c.get("/version")["gitVersion"]
    c.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})
    for ev in c.watch("/api/v1/pods", timeout=30): ...

Kubeconfigs are read as JSON (the lab writes them as JSON, which is also valid YAML for
kubectl and client-go): one cluster, one user, one context.
"""
from __future__ import annotations

import base64
import concurrent.futures
import ctypes
import http.client
import json
import os
import ssl
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlencode, urlsplit

CLONE_NEWNET = 0x40000000

# kind -> (API path prefix, plural, namespaced) for what the lab creates
KINDS = {
    "Namespace": ("/api/v1", "namespaces", False),
    "Node": ("/api/v1", "nodes", False),
    "Pod": ("/api/v1", "pods", True),
    "Service": ("/api/v1", "services", True),
    "ServiceAccount": ("/api/v1", "serviceaccounts", True),
    "ConfigMap": ("/api/v1", "configmaps", True),
    "Secret": ("/api/v1", "secrets", True),
    "Endpoints": ("/api/v1", "endpoints", True),
    "ClusterRole": ("/apis/rbac.authorization.k8s.io/v1", "clusterroles", False),
    "ClusterRoleBinding": ("/apis/rbac.authorization.k8s.io/v1", "clusterrolebindings", False),
    "Role": ("/apis/rbac.authorization.k8s.io/v1", "roles", True),
    "RoleBinding": ("/apis/rbac.authorization.k8s.io/v1", "rolebindings", True),
    "Lease": ("/apis/coordination.k8s.io/v1", "leases", True),
    "Job": ("/apis/batch/v1", "jobs", True),
    "EndpointSlice": ("/apis/discovery.k8s.io/v1", "endpointslices", True),
}


class ApiError(RuntimeError):
    def __init__(self, status: int, method: str, path: str, body: Any):
        self.status, self.method, self.path, self.body = status, method, path, body
        msg = body.get("message") if isinstance(body, dict) else str(body)[:500]
        super().__init__("%s %s: HTTP %s: %s" % (method, path, status, msg))


def enter_netns(name_or_path: str) -> None:
    """Move the calling thread into a network namespace (``ip netns`` name or a path)."""
    path = name_or_path if "/" in name_or_path else "/run/netns/%s" % name_or_path
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, "setns(%s): %s" % (path, os.strerror(err)))
    finally:
        os.close(fd)


def object_path(obj: dict, name: str | None = None) -> str:
    """The REST path of an object (its collection when name is '')."""
    kind = obj["kind"]
    prefix, plural, namespaced = KINDS[kind]
    md = obj.get("metadata") or {}
    base = prefix
    if namespaced:
        base += "/namespaces/%s" % (md.get("namespace") or "default")
    base += "/" + plural
    name = md.get("name") if name is None else name
    return base + ("/" + name if name else "")


class Client:
    def __init__(self, kubeconfig: str | Path, netns: str | None = None, timeout: float = 15.0):
        cfg = json.loads(Path(kubeconfig).read_text())
        ctx_name = cfg.get("current-context") or cfg["contexts"][0]["name"]
        ctx = next(c["context"] for c in cfg["contexts"] if c["name"] == ctx_name)
        cluster = next(c["cluster"] for c in cfg["clusters"] if c["name"] == ctx["cluster"])
        user = next(u["user"] for u in cfg["users"] if u["name"] == ctx["user"])
        u = urlsplit(cluster["server"])
        self.host, self.port = u.hostname, u.port or 443
        self.timeout = timeout
        self.token = user.get("token")
        self._tmp: list[str] = []
        ctxt = ssl.create_default_context(cafile=self._file(cluster, "certificate-authority"))
        cert = self._file(user, "client-certificate")
        if cert:
            ctxt.load_cert_chain(cert, self._file(user, "client-key"))
        self.ssl = ctxt
        self.netns = netns
        self._local = threading.local()
        self._pool = None
        if netns:
            self._pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=4, thread_name_prefix="kube-%s" % netns,
                initializer=enter_netns, initargs=(netns,))

    def _file(self, section: dict, key: str) -> str | None:
        if section.get(key):
            return section[key]
        data = section.get(key + "-data")
        if not data:
            return None
        fd, path = tempfile.mkstemp(prefix="pt-kube-")
        with os.fdopen(fd, "wb") as f:
            f.write(base64.b64decode(data))
        self._tmp.append(path)
        return path

    def close(self) -> None:
        if self._pool:
            self._pool.shutdown(wait=False, cancel_futures=True)
        for p in self._tmp:
            try:
                os.unlink(p)
            except OSError:
                pass
        self._tmp = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---------------------------------------------------------------- transport
    def _conn(self, timeout: float | None = None) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(self.host, self.port, context=self.ssl,
                                           timeout=timeout or self.timeout)

    def _headers(self, ctype: str | None) -> dict:
        h = {"Accept": "application/json", "User-Agent": "podtriage-lab/1.0"}
        if ctype:
            h["Content-Type"] = ctype
        if self.token:
            h["Authorization"] = "Bearer " + self.token
        return h

    def _do(self, method: str, path: str, body: bytes | None, ctype: str | None):
        conn = getattr(self._local, "conn", None)
        for attempt in (0, 1):
            if conn is None:
                conn = self._local.conn = self._conn()
            try:
                conn.request(method, path, body=body, headers=self._headers(ctype))
                r = conn.getresponse()
                data = r.read()
                return r.status, data
            except (http.client.HTTPException, ConnectionError, ssl.SSLError) as e:
                conn.close()
                conn = self._local.conn = None
                if attempt:
                    raise ConnectionError("%s %s: %s" % (method, path, e)) from e
        raise AssertionError("unreachable")

    def request(self, method: str, path: str, body: Any = None, ctype: str | None = None,
                query: dict | None = None, ok=(200, 201, 202)) -> Any:
        if query:
            path += ("&" if "?" in path else "?") + urlencode(query)
        raw = None
        if body is not None:
            raw = body if isinstance(body, bytes) else json.dumps(body).encode()
            ctype = ctype or "application/json"
        if self._pool:
            status, data = self._pool.submit(self._do, method, path, raw, ctype).result()
        else:
            status, data = self._do(method, path, raw, ctype)
        try:
            obj = json.loads(data) if data else None
        except ValueError:
            obj = data.decode(errors="replace")
        if status not in ok:
            raise ApiError(status, method, path, obj)
        return obj

    # ---------------------------------------------------------------- verbs
    def get(self, path: str, **query) -> Any:
        return self.request("GET", path, query=query or None)

    def get_or_none(self, path: str) -> Any:
        try:
            return self.get(path)
        except ApiError as e:
            if e.status == 404:
                return None
            raise

    def create(self, obj: dict) -> dict:
        return self.request("POST", object_path(obj, ""), obj)

    def apply(self, obj: dict, manager: str = "podtriage-lab", subresource: str = "") -> dict:
        """Server-side apply (JSON is YAML): creates or updates, idempotent."""
        path = object_path(obj) + ("/" + subresource if subresource else "")
        return self.request("PATCH", path, obj, ctype="application/apply-patch+yaml",
                            query={"fieldManager": manager, "force": "true"})

    def patch(self, path: str, patch: dict, kind: str = "merge") -> dict:
        ctype = {"merge": "application/merge-patch+json",
                 "strategic": "application/strategic-merge-patch+json",
                 "json": "application/json-patch+json"}[kind]
        return self.request("PATCH", path, patch, ctype=ctype)

    def delete(self, path: str, **query) -> Any:
        return self.request("DELETE", path, query=query or None, ok=(200, 202, 404))

    def watch(self, path: str, resource_version: str | None = None, timeout: float = 60.0,
              stop: threading.Event | None = None) -> Iterator[dict]:
        """Watch events ({type, object}) of a collection for up to ``timeout`` seconds. Runs
        on its own thread (in the client's namespace) and hands events over a queue."""
        import queue

        q: queue.Queue = queue.Queue()
        query = {"watch": "1", "timeoutSeconds": str(max(1, int(timeout))),
                 "allowWatchBookmarks": "false"}
        if resource_version:
            query["resourceVersion"] = resource_version
        full = path + ("&" if "?" in path else "?") + urlencode(query)

        def run():
            try:
                if self.netns:
                    enter_netns(self.netns)
                conn = self._conn(timeout=timeout + 10)
                conn.request("GET", full, headers=self._headers(None))
                r = conn.getresponse()
                if r.status != 200:
                    q.put(ApiError(r.status, "WATCH", path, r.read()[:500].decode(errors="replace")))
                    return
                for line in r:
                    if stop is not None and stop.is_set():
                        break
                    if line.strip():
                        q.put(json.loads(line))
                conn.close()
            except Exception as e:  # noqa: BLE001 - handed to the consumer
                q.put(e)
            finally:
                q.put(None)

        t = threading.Thread(target=run, daemon=True, name="kube-watch")
        t.start()
        while True:
            item = q.get()
            if item is None:
                return
            if isinstance(item, Exception):
                raise item
            yield item

    def wait_for(self, path: str, pred, timeout: float = 30.0, step: float = 0.2) -> Any:
        """GET path until pred(obj) is true; returns the object (TimeoutError otherwise)."""
        deadline = time.monotonic() + timeout
        last = None
        while True:
            try:
                last = self.get(path)
                if pred(last):
                    return last
            except (ApiError, ConnectionError, OSError) as e:
                last = e
            if time.monotonic() >= deadline:
                raise TimeoutError("%s: condition not met after %.0fs (last: %s)"
                                   % (path, timeout, str(last)[:300]))
            time.sleep(step)


def kubeconfig(server: str, ca: Path, name: str, cert: Path | None = None,
               key: Path | None = None, token: str | None = None,
               namespace: str | None = None) -> dict:
    """A one-cluster kubeconfig (JSON) with file paths for the CA and client credentials."""
    user: dict = {}
    if cert:
        user = {"client-certificate": str(cert), "client-key": str(key)}
    if token:
        user["token"] = token
    ctx = {"cluster": "lab", "user": name}
    if namespace:
        ctx["namespace"] = namespace
    return {"apiVersion": "v1", "kind": "Config", "current-context": name,
            "clusters": [{"name": "lab", "cluster": {"server": server,
                                                      "certificate-authority": str(ca)}}],
            "users": [{"name": name, "user": user}],
            "contexts": [{"name": name, "context": ctx}], "preferences": {}}
