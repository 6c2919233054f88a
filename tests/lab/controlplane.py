"""The lab's Kubernetes control plane: etcd, kube-apiserver and kube-controller-manager 1.34,
the real binaries (tests/lab/components.py), in the lab namespace ``<prefix>-cp``.

    cp  eth0 10.0.10.10/24 --(vcp 10.0.10.1)-- node
        etcd                      127.0.0.1:2379 (inside cp only; plain HTTP on loopback)
        kube-apiserver            https://10.0.10.10:6443 (Node,RBAC; PodSecurity and
                                  NodeRestriction admission; service-account tokens signed
                                  with a key made at start; serving certificate made at start)
        kube-controller-manager   Job, TTL-after-finished, EndpointSlice (+mirroring),
                                  namespace, service-account, service-account-token, garbage
                                  collector, root-CA publisher, ClusterRole aggregation

The API server writes an audit log (``<rundir>/kube/audit.log``, JSON lines: every request
of a user that is not a node, a controller or kube-proxy, with the request body of every
change): the record of what kubectl sent and what the server answered. A static-token user
``triager`` (group ``oncall``, no rights until a test binds some: ``triager.kubeconfig``)
is the "real user with a token" the README's RBAC Roles are tested with. Each kubelet
stand-in gets a serving certificate for its node's addresses (``kubelet_serving``), which
the API server verifies when it proxies ``kubectl logs`` to it.

Everything it writes lives in ``<rundir>/kube/`` (certificates, kubeconfigs, etcd's data,
logs). The API server's address exists only inside the lab: callers outside the lab's
namespaces use ``tests.kube.rest.Client(..., netns=...)`` or run kubectl with ``ip netns
exec`` (``scripts/lab kubectl``).

Service CIDRs: 10.233.0.0/18 (the seed's: kube-dns is 10.233.0.3, ``kubernetes`` 10.233.0.1)
and, for the dual-stack lab, fd00:233::/112. Cluster (pod) CIDRs: 10.244.0.0/16, fd00:244::/48.
Stdlib only.
"""
from __future__ import annotations

import base64
import json
import os
import subprocess
import time
from pathlib import Path

from tests.kube import rest

from . import components

CP_ADDR = "10.0.10.10"
CP_GW = "10.0.10.1"
API_PORT = 6443
SERVER = "https://%s:%d" % (CP_ADDR, API_PORT)
SERVICE_CIDRS = "10.233.0.0/18,fd00:233::/112"
CLUSTER_CIDRS = "10.244.0.0/16,fd00:244::/48"
KUBERNETES_SVC = "10.233.0.1"
CLUSTER_DOMAIN = "alpha.pm.k8s"
CONTROLLERS = ("job-controller", "ttl-after-finished-controller", "endpointslice-controller",
               "endpointslice-mirroring-controller", "namespace-controller",
               "serviceaccount-controller", "serviceaccount-token-controller",
               "garbage-collector-controller", "root-ca-certificate-publisher-controller",
               "clusterrole-aggregation-controller")
DAEMONS = ("etcd", "kube-apiserver", "kube-controller-manager")
CERT_DAYS = "30"
TOKEN_USER = ("triager", "1001", "oncall")     # name, uid, group of the static-token user
# What the audit log records: nothing of the lab's own machinery (nodes, controllers, kube-proxy,
# CoreDNS), the request body of every change, the metadata of every read.
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1", "kind": "Policy", "omitStages": ["RequestReceived"],
    "rules": [
        {"level": "None", "users": ["system:kube-proxy", "system:kube-controller-manager",
                                    "system:apiserver"]},
        {"level": "None", "userGroups": ["system:nodes", "system:serviceaccounts:kube-system"]},
        {"level": "None", "nonResourceURLs": ["/readyz*", "/healthz*", "/livez*"]},
        {"level": "Request", "verbs": ["create", "update", "patch", "delete", "deletecollection"]},
        {"level": "Metadata"},
    ],
}

_OPENSSL_CNF = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign,digitalSignature
subjectKeyIdentifier = hash
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = ${ENV::SAN}
[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
"""


class ControlPlane:
    """The control plane of one lab. ``lab`` gives the namespace names and the run dir."""

    def __init__(self, lab):
        self.lab = lab
        self.dir = lab.rundir / "kube"
        self.pki = self.dir / "pki"

    # ------------------------------------------------------------ certificates
    def _openssl(self, name: str, subj: str, ext: str, san: str = "x") -> list[str]:
        cmd = ["openssl", "req", "-x509", "-new", "-config", str(self.pki / "openssl.cnf"),
               "-extensions", ext, "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
               "-noenc", "-keyout", str(self.pki / (name + ".key")),
               "-out", str(self.pki / (name + ".crt")), "-subj", subj, "-days", CERT_DAYS]
        if ext != "ca":
            cmd += ["-CA", str(self.pki / "ca.crt"), "-CAkey", str(self.pki / "ca.key")]
        return cmd

    def make_pki(self, nodes=("node", "node2")) -> None:
        """A CA, the API server's serving certificate, client certificates (admin,
        controller-manager, kube-proxy, one per node, the API server's kubelet client) and
        the service-account signing key: all made now, all EC P-256 (fast)."""
        self.pki.mkdir(parents=True, exist_ok=True)
        os.chmod(self.pki, 0o700)
        (self.pki / "openssl.cnf").write_text(_OPENSSL_CNF)
        _check(self._openssl("ca", "/CN=podtriage-lab-ca", "ca"))
        san = ",".join(["IP:%s" % CP_ADDR, "IP:%s" % KUBERNETES_SVC, "IP:127.0.0.1",
                        "DNS:kubernetes", "DNS:kubernetes.default", "DNS:kubernetes.default.svc",
                        "DNS:kubernetes.default.svc.%s" % CLUSTER_DOMAIN, "DNS:localhost"])
        jobs = [(self._openssl("apiserver", "/CN=kube-apiserver", "server"), {"SAN": san})]
        clients = {"admin": "/O=system:masters/CN=kubernetes-admin",
                   "controller-manager": "/CN=system:kube-controller-manager",
                   "kube-proxy": "/CN=system:kube-proxy",
                   "apiserver-kubelet-client": "/O=system:masters/CN=kube-apiserver-kubelet-client"}
        for n in nodes:
            clients["node-%s" % n] = "/O=system:nodes/CN=system:node:%s" % n
        for name, subj in clients.items():
            jobs.append((self._openssl(name, subj, "client"), {"SAN": "x"}))
        jobs.append((["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                      "ec_paramgen_curve:P-256", "-out", str(self.pki / "sa.key")], {"SAN": "x"}))
        procs = [subprocess.Popen(cmd, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True) for cmd, env in jobs]
        for (cmd, _env), p in zip(jobs, procs):
            _, err = p.communicate(timeout=30)
            if p.returncode != 0:
                raise RuntimeError("openssl failed: %s\n%s" % (" ".join(cmd), err))
        _check(["openssl", "pkey", "-in", str(self.pki / "sa.key"), "-pubout",
                "-out", str(self.pki / "sa.pub")])
        for name in ["admin", "controller-manager", "kube-proxy"] + ["node-%s" % n for n in nodes]:
            self.write_kubeconfig(name, cert=self.pki / (name + ".crt"),
                                  key=self.pki / (name + ".key"))
        token = base64.urlsafe_b64encode(os.urandom(24)).decode().rstrip("=")
        user, uid, group = TOKEN_USER
        (self.pki / "tokens.csv").write_text('%s,%s,%s,"%s"\n' % (token, user, uid, group))
        self.write_kubeconfig(user, token=token)
        (self.dir / "audit-policy.json").write_text(json.dumps(AUDIT_POLICY, indent=1))

    def kubelet_serving(self, node: str, addresses: list[str]) -> tuple[Path, Path]:
        """A serving certificate for the kubelet of ``node`` (its addresses as IP SANs),
        signed by the lab CA, which the API server checks (--kubelet-certificate-authority)
        when it proxies logs to the kubelet. Made when the kubelet starts."""
        name = "kubelet-%s" % node
        san = ",".join(["IP:%s" % a for a in addresses] + ["DNS:%s" % node])
        cmd = self._openssl(name, "/O=system:nodes/CN=system:node:%s" % node, "server")
        p = subprocess.run(cmd, env={**os.environ, "SAN": san}, capture_output=True, text=True,
                           timeout=30)
        if p.returncode != 0:
            raise RuntimeError("openssl failed: %s\n%s" % (" ".join(cmd), p.stderr))
        return self.pki / (name + ".crt"), self.pki / (name + ".key")

    def kubeconfig_path(self, name: str = "admin") -> Path:
        return self.dir / ("%s.kubeconfig" % name)

    def write_kubeconfig(self, name: str, cert: Path | None = None, key: Path | None = None,
                         token: str | None = None, server: str = SERVER) -> Path:
        path = self.kubeconfig_path(name)
        path.write_text(json.dumps(rest.kubeconfig(server, self.pki / "ca.crt", name, cert=cert,
                                                   key=key, token=token), indent=1))
        os.chmod(path, 0o600)
        return path

    # ------------------------------------------------------------ processes
    def commands(self) -> dict[str, list[str]]:
        d, pki = self.dir, self.pki
        etcd = [str(components.path("etcd")), "--name", "lab", "--data-dir", str(d / "etcd"),
                "--listen-client-urls", "http://127.0.0.1:2379",
                "--advertise-client-urls", "http://127.0.0.1:2379",
                "--listen-peer-urls", "http://127.0.0.1:2380",
                "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
                "--initial-cluster", "lab=http://127.0.0.1:2380",
                "--listen-metrics-urls", "http://127.0.0.1:2381",
                # the data dir is on tmpfs (/run) and dies with the lab
                "--unsafe-no-fsync", "--log-level", "warn"]
        apiserver = [
            str(components.path("kube-apiserver")),
            "--etcd-servers=http://127.0.0.1:2379",
            "--bind-address=%s" % CP_ADDR, "--advertise-address=%s" % CP_ADDR,
            "--secure-port=%d" % API_PORT,
            "--tls-cert-file=%s" % (pki / "apiserver.crt"),
            "--tls-private-key-file=%s" % (pki / "apiserver.key"),
            "--client-ca-file=%s" % (pki / "ca.crt"),
            "--kubelet-client-certificate=%s" % (pki / "apiserver-kubelet-client.crt"),
            "--kubelet-client-key=%s" % (pki / "apiserver-kubelet-client.key"),
            "--kubelet-certificate-authority=%s" % (pki / "ca.crt"),
            "--kubelet-preferred-address-types=InternalIP",
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction",   # PodSecurity is on by default
            "--allow-privileged=true",
            "--service-account-issuer=https://kubernetes.default.svc.%s" % CLUSTER_DOMAIN,
            "--service-account-key-file=%s" % (pki / "sa.pub"),
            "--service-account-signing-key-file=%s" % (pki / "sa.key"),
            "--service-cluster-ip-range=%s" % SERVICE_CIDRS,
            "--token-auth-file=%s" % (pki / "tokens.csv"),
            "--audit-policy-file=%s" % (d / "audit-policy.json"),
            "--audit-log-path=%s" % (d / "audit.log"), "--audit-log-format=json",
            "--audit-log-maxsize=100", "--audit-log-maxbackup=1",
            "--profiling=false", "--shutdown-delay-duration=0s", "--v=0",
        ]
        kcm = [
            str(components.path("kube-controller-manager")),
            "--kubeconfig=%s" % self.kubeconfig_path("controller-manager"),
            "--controllers=%s" % ",".join(CONTROLLERS),
            "--leader-elect=false", "--use-service-account-credentials=true",
            "--service-account-private-key-file=%s" % (pki / "sa.key"),
            "--root-ca-file=%s" % (pki / "ca.crt"),
            "--cluster-cidr=%s" % CLUSTER_CIDRS, "--service-cluster-ip-range=%s" % SERVICE_CIDRS,
            "--secure-port=0", "--profiling=false", "--v=0",
            # finished Jobs' pods and objects go away as on a real cluster, but faster
            "--concurrent-job-syncs=5",
        ]
        return {"etcd": etcd, "kube-apiserver": apiserver, "kube-controller-manager": kcm}

    def start(self, name: str) -> None:
        self.lab._spawn(name, "cp", self.commands()[name])

    def wait_ready(self, timeout: float = 120.0) -> float:
        """Until /readyz of the API server says ok (admin credentials); returns seconds."""
        t0 = time.monotonic()
        with self.client() as c:
            deadline = t0 + timeout
            while True:
                for name in ("etcd", "kube-apiserver"):
                    if self.lab._pid(name) is None:
                        raise RuntimeError("%s exited (see %s)" % (name, self.lab.rundir / (name + ".log")))
                try:
                    if c.request("GET", "/readyz", ok=(200,)) is not None:
                        return time.monotonic() - t0
                except (rest.ApiError, ConnectionError, OSError):
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("kube-apiserver not ready after %.0f s (see %s)"
                                       % (timeout, self.lab.rundir / "kube-apiserver.log"))
                time.sleep(0.25)

    def client(self, name: str = "admin", netns: str = "cp") -> rest.Client:
        return rest.Client(self.kubeconfig_path(name), netns=self.lab.ns(netns))


def _check(cmd: list[str]) -> None:
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=30,
                       env={**os.environ, "SAN": "x"})   # openssl.cnf names ${ENV::SAN}
    if p.returncode != 0:
        raise RuntimeError("command failed: %s\n%s" % (" ".join(cmd), p.stderr))
