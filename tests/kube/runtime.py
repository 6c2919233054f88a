"""The container runtime of the kubelet stand-in (tests/kube/kubelet.py).

No container runtime runs the lab's pods: they are network namespaces the lab builds around
real processes. What the stand-in must run for the kubectl plugin are the containers that
come and go: ephemeral containers added to a lab pod, the pods of Jobs, the pods of
``kubectl debug node/``. It runs each one as a process in the pod's lab network namespace
(the node's for a ``hostNetwork`` pod), its output in a log file the kubelet API serves:

- ``venv``: ``ip netns exec NETNS setpriv ...`` with the checkout's venv first on PATH: the
  command line of the spec (``command`` + ``args``, else the image's entrypoint ``podtriage``
  + ``args``) with exactly the capabilities the image's user (65532) would have: those its
  interpreter's file capabilities grant (NET_ADMIN, NET_RAW) inside the container's bounding
  set (the runtime's defaults, plus ``add``, minus ``drop``: ``--profile=restricted`` drops
  ALL and podtriage runs degraded). It runs as uid 0 (with only those capabilities): the
  venv's interpreter may be a pyenv build only root can read. Fast: no image.
- ``podman``: the image itself, ``podman run --network ns:/run/netns/NETNS`` with the spec's
  capabilities, user, environment and a /dev/termination-log, as a container runtime would.

Which image runs how is the runtime table (``kubelet-runtime.json`` beside the kubelet's
mapping file; ``DEFAULT_IMAGES`` without one). An image not in it cannot be "pulled":
ErrImagePull with the message a registry gives, then ImagePullBackOff, as on a cluster
whose nodes cannot reach the registry.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = ROOT / ".venv" / "bin"
IMAGE_USER = 65532                      # image/Containerfile: USER 65532:65532
IMAGE_ENTRYPOINT = ["podtriage"]        # image/Containerfile: ENTRYPOINT ["podtriage"]
IMAGE_CMD = ["--help"]
FILE_CAPS = ("NET_ADMIN", "NET_RAW")    # the image's python3.11: cap_net_admin,cap_net_raw=ep
# podman's default capability set (containers.conf), which the podman runner gets too; no
# NET_RAW (containerd's default has it, CRI-O's and podman's do not)
DEFAULT_CAPS = ("CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "NET_BIND_SERVICE",
                "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT")
DEFAULT_IMAGES = {"ghcr.io/podtriage/podtriage:0.1": "venv",
                  "localhost/podtriage:dev": "podman"}
# where the image keeps what the venv runner takes from the checkout (image/Containerfile)
IMAGE_PATHS = {"/opt/podtriage/runbooks/": str(ROOT / "scripts" / "runbooks") + "/"}
FIELD_REFS = {"metadata.name": ("metadata", "name"), "metadata.namespace": ("metadata", "namespace"),
              "metadata.uid": ("metadata", "uid"), "spec.nodeName": ("spec", "nodeName"),
              "spec.serviceAccountName": ("spec", "serviceAccountName")}


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class PullError(Exception):
    """The image cannot be had: the waiting reason and message of the container status."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason, self.message = reason, message


def load_images(path: Path) -> dict[str, str]:
    """image reference -> 'venv' | 'podman' (the runtime table, or the defaults)."""
    try:
        table = json.loads(path.read_text()).get("images") or {}
    except (OSError, ValueError):
        return dict(DEFAULT_IMAGES)
    return {str(k): str(v) for k, v in table.items()}


def env_of(spec: dict, pod: dict) -> dict[str, str]:
    """The container's environment: plain values and the downward API's fieldRefs."""
    out = {}
    for e in spec.get("env") or []:
        name = e.get("name")
        if not name:
            continue
        ref = ((e.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath")
        if ref:
            part, key = FIELD_REFS.get(ref, ("", ""))
            out[name] = str((pod.get(part) or {}).get(key) or "")
        else:
            out[name] = str(e.get("value", ""))
    return out


def argv_of(spec: dict) -> list[str]:
    """Kubernetes' rule: ``command`` replaces the image's ENTRYPOINT (and drops its CMD),
    ``args`` replaces CMD."""
    cmd, args = spec.get("command"), spec.get("args")
    if cmd:
        return list(cmd) + list(args or [])
    return IMAGE_ENTRYPOINT + list(args if args is not None else IMAGE_CMD)


def security(spec: dict, pod_spec: dict) -> tuple[int, int, bool, set[str]]:
    """(uid, gid, privileged, bounding set) of a container, as a runtime derives them."""
    sc = spec.get("securityContext") or {}
    psc = pod_spec.get("securityContext") or {}
    uid = sc.get("runAsUser", psc.get("runAsUser", IMAGE_USER))
    gid = sc.get("runAsGroup", psc.get("runAsGroup", IMAGE_USER if uid == IMAGE_USER else uid))
    if sc.get("privileged"):
        return int(uid), int(gid), True, set()
    caps = sc.get("capabilities") or {}
    drop = {c.upper().removeprefix("CAP_") for c in caps.get("drop") or []}
    bounding = set(DEFAULT_CAPS) if "ALL" not in drop else set()
    bounding -= drop
    bounding |= {c.upper().removeprefix("CAP_") for c in caps.get("add") or []}
    return int(uid), int(gid), False, bounding


@dataclass
class Container:
    """One container the stand-in started: its process, log and end."""

    namespace: str
    pod: str
    name: str
    image: str
    ephemeral: bool
    log: Path
    started: str = field(default_factory=now)
    finished: str | None = None
    exit_code: int | None = None
    message: str = ""
    container_id: str = ""
    proc: subprocess.Popen | None = None
    term_file: Path | None = None
    killed: bool = False

    @property
    def running(self) -> bool:
        return self.exit_code is None

    def state(self) -> dict:
        if self.running:
            return {"running": {"startedAt": self.started}}
        term = {"exitCode": self.exit_code, "startedAt": self.started,
                "finishedAt": self.finished,
                "reason": "Completed" if self.exit_code == 0 else "Error"}
        if self.message:
            term["message"] = self.message
        if self.container_id:
            term["containerID"] = self.container_id
        return {"terminated": term}

    def kill(self, grace: float = 2.0) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds (the pod's grace period)."""
        p = self.proc
        if p is None or p.poll() is not None:
            return
        self.killed = True
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(p.pid, sig)
            except OSError:
                return
            try:
                p.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue


class Runtime:
    """Starts containers (see the module docstring) and reports their ends to ``on_exit``."""

    def __init__(self, logdir: Path, table: Path, on_exit: Callable[[Container], None]):
        self.logdir = logdir
        self.table = table
        self.on_exit = on_exit
        logdir.mkdir(parents=True, exist_ok=True)
        self._seq = 0
        self._lock = threading.Lock()

    def start(self, pod: dict, spec: dict, *, ephemeral: bool, netns: str) -> Container:
        """Start ``spec`` (a container of ``pod``) in ``netns``; PullError when its image is
        not one the runtime has."""
        image = spec.get("image") or ""
        how = load_images(self.table).get(image)
        if how is None:
            raise PullError("ErrImagePull", 'failed to pull and unpack image "%s": failed to '
                            "resolve reference: pull access denied, repository does not exist "
                            "or may require authorization (the lab's kubelet runs only the "
                            "images in %s)" % (image, self.table.name))
        md = pod["metadata"]
        with self._lock:
            self._seq += 1
            seq = self._seq
        c = Container(namespace=md["namespace"], pod=md["name"], name=spec["name"], image=image,
                      ephemeral=ephemeral,
                      log=self.logdir / ("%s_%s_%s_%d.log" % (md["namespace"], md["name"],
                                                             spec["name"], seq)))
        c.container_id = "lab://%s/%d" % (how, seq)
        argv = (self._venv if how == "venv" else self._podman)(c, pod, spec, netns, seq)
        with open(c.log, "wb") as log:
            c.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                      stderr=subprocess.STDOUT, cwd="/",
                                      env=self._env(spec, pod) if how == "venv" else None,
                                      start_new_session=True)
        threading.Thread(target=self._wait, args=(c,), daemon=True,
                         name="ctr-%s" % c.name).start()
        return c

    def _env(self, spec: dict, pod: dict) -> dict[str, str]:
        return {"PATH": "%s:/usr/sbin:/usr/bin:/sbin:/bin" % VENV_BIN, "HOME": "/tmp",
                "LANG": "C.UTF-8", "HOSTNAME": pod["metadata"]["name"], **env_of(spec, pod)}

    def _venv(self, c: Container, pod: dict, spec: dict, netns: str, seq: int) -> list[str]:
        # uid 0 with exactly the capabilities the image's user would have: the venv's
        # interpreter may live where only root can read it (a pyenv build under /root), and
        # podtriage judges what it may do by CapEff, not by its uid
        uid, _gid, privileged, bounding = security(spec, pod["spec"])
        wrap = ["setpriv"]
        if not privileged:
            caps = bounding if uid == 0 else set(FILE_CAPS) & bounding
            spec_caps = "".join(",+" + x.lower() for x in sorted(caps))
            wrap += ["--inh-caps=-all" + spec_caps, "--ambient-caps=-all" + spec_caps,
                     "--bounding-set=-all" + spec_caps]
        argv = []
        for a in argv_of(spec):
            for image_path, here in IMAGE_PATHS.items():
                if a.startswith(image_path):
                    a = here + a[len(image_path):]
            argv.append(a)
        return ["ip", "netns", "exec", netns, *wrap, "--", *argv]

    def _podman(self, c: Container, pod: dict, spec: dict, netns: str, seq: int) -> list[str]:
        term = self.logdir / ("%s_%s_%s_%d.termination" % (c.namespace, c.pod, c.name, seq))
        term.write_text("")
        term.chmod(0o666)
        c.term_file = term
        uid, gid, privileged, _ = security(spec, pod["spec"])
        sc = spec.get("securityContext") or {}
        caps = sc.get("capabilities") or {}
        # A hostNetwork pod (a Job of `nodes`, `kubectl debug node/`) shares the node's network
        # namespace, where this stand-in runs: podman's "host". Named by its path instead,
        # runc sees the host's namespace and refuses podman's default net.* sysctls
        # (ping_group_range: "not allowed in host network namespace").
        network = "host" if pod["spec"].get("hostNetwork") else "ns:/run/netns/%s" % netns
        cmd = ["podman", "--runtime", "runc", "run", "--rm", "--pull=never",
               "--network", network, "--user", "%d:%d" % (uid, gid),
               "-v", "%s:/dev/termination-log:rw" % term,
               "--name", "lab-%s-%s-%s-%d" % (c.namespace, c.pod, c.name, os.getpid())[:250]]
        resolv = Path("/etc/netns") / netns / "resolv.conf"
        if resolv.exists():
            cmd += ["-v", "%s:/etc/resolv.conf:ro" % resolv]
        if privileged:
            cmd.append("--privileged")
        for cap in caps.get("drop") or []:
            cmd += ["--cap-drop", cap]
        for cap in caps.get("add") or []:
            cmd += ["--cap-add", cap]
        if sc.get("allowPrivilegeEscalation") is False:
            cmd += ["--security-opt", "no-new-privileges"]
        for k, v in env_of(spec, pod).items():
            cmd += ["--env", "%s=%s" % (k, v)]
        if spec.get("command"):
            cmd += ["--entrypoint", json.dumps(spec["command"])]
        cmd.append(c.image)
        cmd += list(spec.get("args") or [])
        return cmd

    def _wait(self, c: Container) -> None:
        assert c.proc is not None
        code = c.proc.wait()
        c.finished = now()
        if c.term_file is not None:
            try:
                # the kubelet caps a termination message at 4096 bytes
                c.message = c.term_file.read_text(errors="replace").strip()[:4096]
            except OSError:
                pass
        # a container killed by a signal exits 128 + the signal (what runc reports)
        c.exit_code = code if code >= 0 else 128 - code
        self.on_exit(c)
