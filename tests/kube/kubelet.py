"""The kubelet stand-in: the one part of Kubernetes that cannot run in the lab.

A real kubelet owns its pods' sandboxes: it creates each pod's network namespace through
its container runtime and runs every container from an image. The lab's pods are network
namespaces the lab builds around real processes (CoreDNS, node-cache, bind9...), without
images or a registry. (containerd 1.6.20 from Debian runs the podtriage image here with
runc, hybrid cgroups and all: the runtime is not what stops a real kubelet, the lab's
pods are.) So ``NodeAgent`` (``python -m tests.kube.kubelet``, started by the lab inside
the node's network namespace, as a kubelet runs on its node) does what a kubelet does for
them, through the REAL kube-apiserver, with the node's own client certificate
(``system:node:NAME``: the Node authorizer and NodeRestriction admission judge it):

- registers its Node (addresses, Ready, ``daemonEndpoints`` port 10250), renews its Lease;
- watches the pods bound to it (``spec.nodeName``: there is no scheduler) and writes their
  status: a lab pod (the mapping file: pod -> lab namespace, addresses, pidfile) is Running
  with the namespace's address, its container running while the lab's process lives
  (checked every second, as the PLEG relists), Ready from its readinessProbe;
- runs the containers that come and go (tests/kube/runtime.py): the ephemeral containers
  added to any pod it reports (``kubectl debug POD``), and the containers of pods it does
  not know with ``hostNetwork`` (Job pods, ``kubectl debug node/``), in the node's
  namespace; their status (waiting on an image it cannot "pull", running, terminated with
  the exit code and termination message) goes to ``ephemeralContainerStatuses`` or
  ``containerStatuses``, a pod's phase to Succeeded or Failed when its containers end (the
  real Job controller takes it from there: Job status, TTL, deletion);
- kills the containers of a pod being deleted and confirms the deletion;
- serves the kubelet API on its addresses (tests/kube/kubeletapi.py): ``/containerLogs``,
  which kube-apiserver proxies ``kubectl logs`` (and ``-f``) to; the lab processes' own
  logs too (``kubectl logs -n kube-system coredns``).

The mapping file (JSON, re-read when it changes)::

    {"addresses": ["192.168.50.1"],
     "pods": {"kube-system/coredns": {"ips": ["10.244.0.3"], "netns": "pt-coredns",
                                       "pidfile": "/run/podtriage-lab/pt/coredns.pid"}}}

A pod mapped without a pidfile (a client pod) is running as long as it is mapped.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

if __package__ in (None, ""):           # python tests/kube/kubelet.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.kube import rest  # noqa: E402
from tests.kube.kubeletapi import PORT, KubeletApi, LogSource  # noqa: E402
from tests.kube.runtime import Container, PullError, Runtime, now  # noqa: E402

KUBELET_VERSION = "v1.34.4"
POLL = 1.0                  # the kubelet's PLEG relists containers every second
DEAD_AFTER = 2              # consecutive polls a process must be gone before it is reported
BACKOFF_AFTER = 2.0         # ErrImagePull becomes ImagePullBackOff after this many seconds
PULL_RETRY = 5.0


def _proc_alive(pidfile: str | None, marker: str) -> int | None:
    """The pid in pidfile when that process lives and its command line names marker."""
    if not pidfile:
        return None
    try:
        pid = int(Path(pidfile).read_text().split()[0])
        with open("/proc/%d/stat" % pid) as f:
            if f.read().split(") ")[-1][:1] in ("Z", "X"):
                return None
        cmdline = Path("/proc/%d/cmdline" % pid).read_bytes().replace(b"\0", b" ").decode()
    except (OSError, ValueError, IndexError):
        return None
    return pid if marker in cmdline else None


def own_netns() -> str | None:
    """The ``ip netns`` name of the namespace this process runs in (the node's)."""
    p = subprocess.run(["ip", "netns", "identify", str(os.getpid())], capture_output=True,
                       text=True, timeout=10)
    name = p.stdout.strip().split("\n")[0]
    return name or None


@dataclass
class _PodState:
    container_id: str | None = None
    started: str | None = None
    restarts: int = 0
    dead_polls: int = 0
    ready: bool = False
    fails: int = 0
    next_probe: float = 0.0
    transitions: dict = field(default_factory=dict)   # condition type -> (status, time)
    last_status: str = ""
    born: str = field(default_factory=now)


@dataclass
class _Waiting:
    reason: str
    message: str
    since: float
    retry: float


class NodeAgent:
    """One node's kubelet stand-in against the real API server (see the module docstring)."""

    def __init__(self, kubeconfig: str | Path, node: str, mapping: str | Path, marker: str,
                 tls: tuple[Path, Path, Path] | None = None):
        self.rest = rest
        self.api = rest.Client(kubeconfig)
        self.node = node
        self.mapping_path = Path(mapping)
        self.marker = marker
        self.tls = tls
        self.mapping: dict = {"addresses": [], "pods": {}}
        self._mtime = None
        self.pods: dict[str, dict] = {}
        self.states: dict[str, _PodState] = {}
        self.ctrs: dict[tuple[str, str], Container] = {}       # (pod uid, container) -> run
        self.waiting: dict[tuple[str, str], _Waiting] = {}
        self.netns = own_netns()
        base = self.mapping_path.with_suffix("")
        self.runtime = Runtime(Path(str(base) + "-containers"),
                               self.mapping_path.parent / "kubelet-runtime.json",
                               on_exit=lambda _c: self._wake.set())
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._born = now()
        self.server: KubeletApi | None = None

    # ------------------------------------------------------------ node
    def load_mapping(self) -> None:
        try:
            m = self.mapping_path.stat().st_mtime_ns
            if m != self._mtime:
                self.mapping = json.loads(self.mapping_path.read_text())
                self._mtime = m
        except (OSError, ValueError):
            pass

    def node_status(self) -> dict:
        t = now()
        addrs = [{"type": "InternalIP", "address": a} for a in self.mapping.get("addresses", [])]
        addrs.append({"type": "Hostname", "address": self.node})
        conds = [{"type": typ, "status": "False", "reason": "Kubelet" + reason,
                  "message": msg, "lastHeartbeatTime": t, "lastTransitionTime": self._born}
                 for typ, reason, msg in (
                     ("MemoryPressure", "HasSufficientMemory", "kubelet has sufficient memory available"),
                     ("DiskPressure", "HasNoDiskPressure", "kubelet has no disk pressure"),
                     ("PIDPressure", "HasSufficientPID", "kubelet has sufficient PID available"))]
        conds.append({"type": "Ready", "status": "True", "reason": "KubeletReady",
                      "message": "kubelet stand-in (tests/kube/kubelet.py) is posting ready status",
                      "lastHeartbeatTime": t, "lastTransitionTime": self._born})
        cap = {"cpu": "2", "memory": "4Gi", "pods": "110", "ephemeral-storage": "10Gi"}
        return {"status": {"addresses": addrs, "conditions": conds, "capacity": cap,
                           "allocatable": cap,
                           "daemonEndpoints": {"kubeletEndpoint": {"Port": PORT}},
                           "nodeInfo": {"kubeletVersion": KUBELET_VERSION,
                                        "kubeProxyVersion": "", "operatingSystem": "linux",
                                        "architecture": "amd64", "osImage": "podtriage lab",
                                        "kernelVersion": os.uname().release,
                                        "containerRuntimeVersion": "lab://netns",
                                        "machineID": "", "systemUUID": "", "bootID": ""}}}

    def register(self) -> None:
        body = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": self.node,
                             "labels": {"kubernetes.io/hostname": self.node,
                                        "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                                        "beta.kubernetes.io/os": "linux",
                                        "beta.kubernetes.io/arch": "amd64"}},
                "spec": {}}
        try:
            self.api.create(body)
        except self.rest.ApiError as e:
            if e.status != 409:
                raise
        self.api.patch("/api/v1/nodes/%s/status" % self.node, self.node_status(),
                       kind="strategic")

    def renew_lease(self) -> None:
        path = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/%s" % self.node
        t = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        spec = {"holderIdentity": self.node, "leaseDurationSeconds": 40, "renewTime": t}
        try:
            self.api.patch(path, {"spec": spec})
        except self.rest.ApiError as e:
            if e.status != 404:
                raise
            self.api.create({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                             "metadata": {"name": self.node, "namespace": "kube-node-lease"},
                             "spec": spec})

    # ------------------------------------------------------------ pods
    def _pods_path(self) -> str:
        return "/api/v1/pods?fieldSelector=spec.nodeName%%3D%s" % self.node

    def _watch_loop(self) -> None:
        while not self._stop.is_set():
            try:
                lst = self.api.get(self._pods_path())
                with self._lock:
                    self.pods = {"%s/%s" % (p["metadata"]["namespace"], p["metadata"]["name"]): p
                                 for p in lst.get("items", [])}
                self._wake.set()
                for ev in self.api.watch(self._pods_path(), lst["metadata"]["resourceVersion"],
                                         timeout=300, stop=self._stop):
                    obj = ev.get("object") or {}
                    if ev.get("type") == "ERROR":
                        break
                    md = obj.get("metadata") or {}
                    key = "%s/%s" % (md.get("namespace"), md.get("name"))
                    with self._lock:
                        if ev.get("type") == "DELETED":
                            self.pods.pop(key, None)
                            self.states.pop(key, None)
                        else:
                            self.pods[key] = obj
                    self._wake.set()
            except Exception as e:  # noqa: BLE001 - an API hiccup: list again
                print("kubelet %s: watch: %s" % (self.node, e), file=sys.stderr, flush=True)
                self._stop.wait(1.0)

    def _probe(self, probe: dict, ips: list[str], ports: dict) -> bool:
        host = ips[0] if ips else "127.0.0.1"
        timeout = float(probe.get("timeoutSeconds") or 1)
        try:
            if "httpGet" in probe:
                h = probe["httpGet"]
                port = h.get("port")
                port = ports.get(port, port) if isinstance(port, str) else port
                conn = http.client.HTTPConnection(h.get("host") or host, int(port), timeout=timeout)
                try:
                    conn.request("GET", h.get("path") or "/")
                    return 200 <= conn.getresponse().status < 400
                finally:
                    conn.close()
            if "tcpSocket" in probe:
                port = probe["tcpSocket"].get("port")
                port = ports.get(port, port) if isinstance(port, str) else port
                socket.create_connection((host, int(port)), timeout=timeout).close()
                return True
        except (OSError, http.client.HTTPException, ValueError):
            return False
        return True       # exec probes: nothing to run them in; count as passing

    def _cond(self, st: _PodState, typ: str, ok: bool, t: str) -> dict:
        status = "True" if ok else "False"
        prev = st.transitions.get(typ)
        if prev is None or prev[0] != status:
            st.transitions[typ] = (status, t)
        c = {"type": typ, "status": status, "lastProbeTime": None,
             "lastTransitionTime": st.transitions[typ][1]}
        if not ok and typ in ("Ready", "ContainersReady"):
            c["reason"] = "ContainersNotReady"
        return c

    # ------------------------------------------------------------ containers that come and go
    def _start(self, pod: dict, spec: dict, ephemeral: bool, netns: str | None) -> None:
        """Start one container (once), or note why it waits (an image it cannot pull)."""
        key = (pod["metadata"]["uid"], spec["name"])
        if key in self.ctrs:
            return
        w = self.waiting.get(key)
        if w is not None and time.monotonic() < w.retry:
            if w.reason == "ErrImagePull" and time.monotonic() - w.since >= BACKOFF_AFTER:
                w.reason = "ImagePullBackOff"
                w.message = 'Back-off pulling image "%s"' % spec.get("image")
            return
        if netns is None:
            self.waiting[key] = _Waiting("ContainerCreating", "no lab network namespace for "
                                         "this pod", time.monotonic(), time.monotonic() + 3600)
            return
        try:
            self.ctrs[key] = self.runtime.start(pod, spec, ephemeral=ephemeral, netns=netns)
            self.waiting.pop(key, None)
        except PullError as e:
            since = w.since if w is not None else time.monotonic()
            self.waiting[key] = _Waiting(e.reason if w is None else "ImagePullBackOff",
                                         e.message, since, time.monotonic() + PULL_RETRY)
        except OSError as e:
            self.waiting[key] = _Waiting("RunContainerError", str(e), time.monotonic(),
                                         time.monotonic() + 3600)

    def _status_of(self, pod: dict, spec: dict) -> dict:
        key = (pod["metadata"]["uid"], spec["name"])
        st = {"name": spec["name"], "image": spec.get("image", ""), "imageID": "",
              "ready": False, "restartCount": 0}
        c = self.ctrs.get(key)
        if c is not None:
            st["containerID"] = c.container_id
            st["state"] = c.state()
            st["started"] = c.running
            st["ready"] = c.running
        else:
            w = self.waiting.get(key)
            st["state"] = {"waiting": {"reason": w.reason if w else "ContainerCreating",
                                       **({"message": w.message} if w and w.message else {})}}
        return st

    def _ephemeral(self, pod: dict, netns: str | None) -> list[dict]:
        specs = pod["spec"].get("ephemeralContainers") or []
        for spec in specs:
            self._start(pod, spec, True, netns)
        return [self._status_of(pod, s) for s in specs]

    def run_pod(self, key: str, pod: dict) -> None:
        """A pod the lab does not run (a Job's, kubectl debug node/'s): with hostNetwork its
        containers run in the node's namespace, once (restartPolicy Never)."""
        if not pod["spec"].get("hostNetwork"):
            return                  # no sandbox to give it: Pending, as without a CNI
        phase = (pod.get("status") or {}).get("phase")
        st = self.states.setdefault(key, _PodState())
        if phase in ("Succeeded", "Failed") and st.last_status:
            return
        containers = pod["spec"].get("containers") or []
        for spec in containers:
            self._start(pod, spec, False, self.netns)
        statuses = [self._status_of(pod, s) for s in containers]
        runs = [self.ctrs.get((pod["metadata"]["uid"], s["name"])) for s in containers]
        if runs and all(r is not None and not r.running for r in runs):
            phase = "Succeeded" if all(r.exit_code == 0 for r in runs) else "Failed"
        elif any(r is not None for r in runs):
            phase = "Running"
        else:
            phase = "Pending"
        t = now()
        ready = phase == "Running" and all(r is not None and r.running for r in runs)
        host = self.mapping.get("addresses", [])
        status = {"phase": phase, "hostIP": host[0] if host else None,
                  "hostIPs": [{"ip": a} for a in host],
                  "podIP": host[0] if host else None, "podIPs": [{"ip": a} for a in host],
                  "startTime": st.born,
                  "conditions": [self._cond(st, "PodReadyToStartContainers", True, t),
                                 self._cond(st, "Initialized", True, t),
                                 self._cond(st, "Ready", ready, t),
                                 self._cond(st, "ContainersReady", ready, t),
                                 self._cond(st, "PodScheduled", True, t)],
                  "containerStatuses": statuses,
                  "ephemeralContainerStatuses": self._ephemeral(pod, self.netns)}
        self._write_status(pod, st, status)

    def _write_status(self, pod: dict, st: _PodState, status: dict) -> None:
        # the API server sets qosClass at creation from the requests and limits, and refuses
        # any other value later (status.qosClass: field is immutable)
        qos = (pod.get("status") or {}).get("qosClass")
        if qos:
            status["qosClass"] = qos
        text = json.dumps(status, sort_keys=True)
        if text == st.last_status:
            return
        md = pod["metadata"]
        self.api.patch("/api/v1/namespaces/%s/pods/%s/status" % (md["namespace"], md["name"]),
                       {"status": status})
        st.last_status = text

    def reconcile(self, key: str, pod: dict, spec_map: dict) -> None:
        """A lab pod: its process is its container; its ephemeral containers run here."""
        st = self.states.setdefault(key, _PodState())
        t = now()
        pidfile = spec_map.get("pidfile")
        pid = _proc_alive(pidfile, self.marker) if pidfile else 0
        ips = spec_map.get("ips") or []
        if pod["spec"].get("hostNetwork"):
            ips = self.mapping.get("addresses", [])
        running = pid is not None
        if running:
            st.dead_polls = 0
            cid = "lab://%s" % (pid or spec_map.get("netns", key))
            if st.container_id != cid:
                if st.container_id is not None:
                    st.restarts += 1
                st.container_id, st.started = cid, t
                st.ready, st.fails, st.next_probe = False, 0, 0.0
        else:
            st.dead_polls += 1
            if st.dead_polls >= DEAD_AFTER:
                st.ready = False
        alive = running or (st.container_id is not None and st.dead_polls < DEAD_AFTER)
        containers = pod["spec"].get("containers") or []
        probe = next((c.get("readinessProbe") for c in containers if c.get("readinessProbe")), None)
        if alive and probe is None:
            st.ready = True
        elif alive and time.monotonic() >= st.next_probe:
            ports = {p.get("name"): p.get("containerPort")
                     for c in containers for p in c.get("ports") or [] if p.get("name")}
            ok = self._probe(probe, ips, ports)
            period = float(probe.get("periodSeconds") or 10)
            if ok:
                st.ready, st.fails = True, 0
            else:
                st.fails += 1
                if st.fails >= int(probe.get("failureThreshold") or 3):
                    st.ready = False
            # until the first success, probe fast (the real kubelet waits periodSeconds)
            st.next_probe = time.monotonic() + (period if st.ready else 0.5)
        statuses = []
        for c in containers:
            cs = {"name": c["name"], "image": c.get("image", ""), "imageID": "",
                  "ready": bool(alive and st.ready), "restartCount": st.restarts,
                  "started": bool(alive)}
            if alive:
                cs["containerID"] = st.container_id
                cs["state"] = {"running": {"startedAt": st.started}}
            else:
                cs["state"] = {"waiting": {"reason": "CrashLoopBackOff",
                                           "message": "the lab stopped this pod's process"}}
            statuses.append(cs)
        ready = bool(alive and st.ready)
        host = self.mapping.get("addresses", [])
        netns = spec_map.get("netns") or (self.netns if pod["spec"].get("hostNetwork") else None)
        status = {
            "phase": "Running",
            "hostIP": host[0] if host else None, "hostIPs": [{"ip": a} for a in host],
            "podIP": ips[0] if ips else None, "podIPs": [{"ip": a} for a in ips],
            "startTime": st.transitions.get("PodScheduled", (None, t))[1],
            "conditions": [self._cond(st, "PodReadyToStartContainers", True, t),
                           self._cond(st, "Initialized", True, t),
                           self._cond(st, "Ready", ready, t),
                           self._cond(st, "ContainersReady", ready, t),
                           self._cond(st, "PodScheduled", True, t)],
            "containerStatuses": statuses,
            "ephemeralContainerStatuses": self._ephemeral(pod, netns)}
        self._write_status(pod, st, status)

    def _delete(self, pod: dict, mapped: bool) -> None:
        """A pod being deleted: its containers killed (not the lab's own processes), then
        the deletion confirmed, as a kubelet does once they are gone."""
        md = pod["metadata"]
        grace = float(pod["spec"].get("terminationGracePeriodSeconds") or 0)
        for (uid, _name), c in list(self.ctrs.items()):
            if uid == md["uid"] and c.running:
                threading.Thread(target=c.kill, args=(min(grace, 2.0),), daemon=True).start()
        if any(uid == md["uid"] and c.running for (uid, _n), c in self.ctrs.items()) and not mapped:
            return
        self.api.request("DELETE", "/api/v1/namespaces/%s/pods/%s" % (md["namespace"], md["name"]), {
            "apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0,
            "preconditions": {"uid": md["uid"]}}, ok=(200, 202, 404, 409))

    # ------------------------------------------------------------ the kubelet API's view
    def log_source(self, namespace: str, name: str, container: str) -> LogSource | None:
        with self._lock:
            pod = self.pods.get("%s/%s" % (namespace, name))
            if pod is None:
                return None
            names = {c["name"] for c in pod["spec"].get("containers") or []}
            names |= {c["name"] for c in pod["spec"].get("ephemeralContainers") or []}
            if container not in names:
                return None
            key = (pod["metadata"]["uid"], container)
            c = self.ctrs.get(key)
            if c is not None:
                return LogSource(path=c.log, running=lambda: c.running)
            m = self.mapping.get("pods", {}).get("%s/%s" % (namespace, name))
            if m is not None and m.get("pidfile"):
                log = Path(m["pidfile"]).with_suffix(".log")
                pidfile = m["pidfile"]
                return LogSource(path=log, running=lambda: _proc_alive(pidfile, self.marker) is not None)
            w = self.waiting.get(key)
            return LogSource(path=None, running=lambda: False,
                             waiting=w.reason if w else "ContainerCreating")

    # ------------------------------------------------------------ main loop
    def tick(self) -> None:
        with self._lock:
            pods = dict(self.pods)
        for key, pod in pods.items():
            md = pod["metadata"]
            m = self.mapping.get("pods", {}).get(key)
            with self._lock:
                if md.get("deletionTimestamp"):
                    self._delete(pod, mapped=m is not None)
                elif m is not None:
                    self.reconcile(key, pod, m)
                else:
                    self.run_pod(key, pod)

    def run(self) -> None:
        self.load_mapping()
        for attempt in range(120):
            try:
                self.register()
                break
            except (self.rest.ApiError, ConnectionError, OSError) as e:
                if attempt == 119:
                    raise
                print("kubelet %s: register: %s" % (self.node, e), file=sys.stderr, flush=True)
                time.sleep(0.5)
        print("kubelet %s: registered" % self.node, file=sys.stderr, flush=True)
        if self.tls is not None:
            self.server = KubeletApi(self.mapping.get("addresses", []), *self.tls,
                                     lookup=self.log_source).start()
        threading.Thread(target=self._watch_loop, daemon=True, name="pods-watch").start()
        next_lease = next_status = 0.0
        while not self._stop.is_set():
            self._wake.wait(POLL)
            self._wake.clear()
            self.load_mapping()
            tick = time.monotonic()
            try:
                if tick >= next_lease:
                    self.renew_lease()
                    next_lease = tick + 10
                if tick >= next_status:
                    if next_status:
                        self.api.patch("/api/v1/nodes/%s/status" % self.node, self.node_status(),
                                       kind="strategic")
                    next_status = tick + 60
                self.tick()
            except Exception as e:  # noqa: BLE001 - keep serving; the next poll retries
                print("kubelet %s: %s: %s" % (self.node, type(e).__name__, e), file=sys.stderr,
                      flush=True)
        for c in list(self.ctrs.values()):
            c.kill(1.0)
        if self.server is not None:
            self.server.stop()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.kube.kubelet",
                                 description="the lab's kubelet stand-in for one node (real API)")
    ap.add_argument("--kubeconfig", required=True)
    ap.add_argument("--node", required=True)
    ap.add_argument("--mapping", required=True, help="JSON: the node's addresses and its pods")
    ap.add_argument("--marker", required=True,
                    help="a pod's process counts as its container when its command line names this")
    ap.add_argument("--tls-cert-file", help="the kubelet API's serving certificate")
    ap.add_argument("--tls-private-key-file")
    ap.add_argument("--client-ca-file", help="CA of the API server's kubelet client certificate")
    a = ap.parse_args(argv)
    tls = None
    if a.tls_cert_file:
        tls = (Path(a.tls_cert_file), Path(a.tls_private_key_file), Path(a.client_ca_file))
    agent = NodeAgent(a.kubeconfig, a.node, a.mapping, a.marker, tls=tls)
    signal.signal(signal.SIGTERM, lambda *_: agent.stop())
    signal.signal(signal.SIGINT, lambda *_: agent.stop())
    agent.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
