"""The Kubernetes objects of the lab, as a cluster would hold them (JSON-ready dicts).

What kubeadm and the addons would have created: CoreDNS's ServiceAccount and RBAC, the
``coredns`` and ``nodelocaldns`` ConfigMaps (the lab's Corefiles), the ``kube-dns`` Service
(ClusterIP 10.233.0.3; dual-stack with fd00:233::3 in the IPv6 lab); and the lab's own
workloads: CoreDNS, NodeLocal DNSCache and kube-proxy pods, the app host (``wxwork/backend``
behind a headless Service, so ``backend.wxwork.svc.alpha.pm.k8s`` answers its pod address)
and the client pods (``wxwork/pod``, ``pod1b``, ``pod2a``, ``pod2b``; label ``app=web``).
There is no scheduler: every pod is created bound to its node (``spec.nodeName``), as a
DaemonSet's or a pinned pod is.
"""
from __future__ import annotations

from . import components

APP_NS = "wxwork"            # the seed pod's namespace (its resolv.conf searches wxwork.svc...)
CLIENT_IMAGE = "docker.io/library/debian:bookworm-slim"


def _meta(name: str, namespace: str | None = None, labels: dict | None = None) -> dict:
    md: dict = {"name": name}
    if namespace:
        md["namespace"] = namespace
    if labels:
        md["labels"] = labels
    return md


def namespace(name: str, labels: dict | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(name, labels=labels)}


def service_account(name: str, ns: str) -> dict:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(name, ns)}


def coredns_rbac() -> list[dict]:
    """CoreDNS's ClusterRole (as kubeadm's addon manifest) and its binding."""
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": _meta("system:coredns"),
            "rules": [{"apiGroups": [""], "resources": ["endpoints", "services", "pods", "namespaces"],
                       "verbs": ["list", "watch"]},
                      {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
                       "verbs": ["list", "watch"]}]}
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": _meta("system:coredns"),
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                           "name": "system:coredns"},
               "subjects": [{"kind": "ServiceAccount", "name": "coredns", "namespace": "kube-system"}]}
    return [role, binding]


def configmap(name: str, ns: str, data: dict) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(name, ns), "data": data}


def kube_dns_service(ipv6: bool) -> dict:
    spec = {"selector": {"k8s-app": "kube-dns"}, "clusterIP": "10.233.0.3",
            "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                      {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                      {"name": "metrics", "port": 9153, "protocol": "TCP", "targetPort": 9153}]}
    if ipv6:
        spec.update(clusterIPs=["10.233.0.3", "fd00:233::3"], ipFamilies=["IPv4", "IPv6"],
                    ipFamilyPolicy="RequireDualStack")
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": _meta("kube-dns", "kube-system",
                              {"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"}),
            "spec": spec}


def headless_service(name: str, ns: str, selector: dict, port: int) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": _meta(name, ns),
            "spec": {"clusterIP": "None", "selector": selector,
                     "ports": [{"name": "http", "port": port, "protocol": "TCP"}]}}


def pod(name: str, ns: str, node: str, labels: dict, container: dict,
        host_network: bool = False, sa: str | None = None, priority: str | None = None) -> dict:
    spec: dict = {"nodeName": node, "containers": [container],
                  "tolerations": [{"operator": "Exists"}], "terminationGracePeriodSeconds": 5,
                  "enableServiceLinks": False}
    if host_network:
        spec["hostNetwork"] = True
        spec["dnsPolicy"] = "Default"
    if sa:
        spec["serviceAccountName"] = sa
    else:
        spec["automountServiceAccountToken"] = False
    if priority:
        spec["priorityClassName"] = priority
    return {"apiVersion": "v1", "kind": "Pod", "metadata": _meta(name, ns, labels), "spec": spec}


def coredns_pod(node: str, version_key: str) -> dict:
    version = components.BY_KEY[version_key].version
    c = {"name": "coredns", "image": "registry.k8s.io/coredns/coredns:v%s" % version,
         "args": ["-conf", "/etc/coredns/Corefile"],
         "ports": [{"name": "dns", "containerPort": 53, "protocol": "UDP"},
                   {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
                   {"name": "metrics", "containerPort": 9153, "protocol": "TCP"},
                   {"name": "liveness-probe", "containerPort": 8080, "protocol": "TCP"},
                   {"name": "readiness-probe", "containerPort": 8181, "protocol": "TCP"}],
         "livenessProbe": {"httpGet": {"path": "/health", "port": "liveness-probe"},
                           "initialDelaySeconds": 60, "timeoutSeconds": 5, "failureThreshold": 5},
         "readinessProbe": {"httpGet": {"path": "/ready", "port": "readiness-probe"},
                            "periodSeconds": 10, "timeoutSeconds": 1, "failureThreshold": 3}}
    return pod("coredns", "kube-system", node, {"k8s-app": "kube-dns"}, c, sa="coredns",
               priority="system-cluster-critical")


def nodelocal_pod(node: str, localip: str = "169.254.25.10") -> dict:
    c = {"name": "node-cache", "image": "registry.k8s.io/dns/k8s-dns-node-cache:%s"
         % components.BY_KEY["node-cache"].version,
         "args": ["-localip", localip, "-conf", "/etc/coredns/Corefile", "-upstreamsvc", "coredns",
                  "-setupinterface=false", "-health-port", "9254"],
         "securityContext": {"privileged": True},
         "livenessProbe": {"httpGet": {"host": localip, "path": "/health", "port": 9254},
                           "initialDelaySeconds": 60, "timeoutSeconds": 5}}
    return pod("nodelocaldns-%s" % node, "kube-system", node, {"k8s-app": "nodelocaldns"}, c,
               host_network=True, priority="system-node-critical")


def kube_proxy_pod(node: str) -> dict:
    c = {"name": "kube-proxy", "image": "registry.k8s.io/kube-proxy:%s" % components.K8S_VERSION,
         "command": ["/usr/local/bin/kube-proxy", "--config=/var/lib/kube-proxy/config.conf",
                     "--hostname-override=%s" % node],
         "securityContext": {"privileged": True}}
    return pod("kube-proxy-%s" % node, "kube-system", node, {"k8s-app": "kube-proxy"}, c,
               host_network=True, priority="system-node-critical")


def client_pod(name: str, node: str) -> dict:
    c = {"name": "app", "image": CLIENT_IMAGE, "command": ["sleep", "infinity"]}
    return pod(name, APP_NS, node, {"app": "web"}, c)


def backend_pod(node: str) -> dict:
    c = {"name": "backend", "image": "docker.io/library/python:3.11-slim",
         "command": ["python3", "-m", "http.server", "80"],
         "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}]}
    return pod("backend", APP_NS, node, {"app": "backend"}, c)


def base(ipv6: bool, coredns_key: str, corefiles: dict[str, str]) -> list[dict]:
    """Everything the base lab (node "node") holds, in creation order."""
    return [
        namespace(APP_NS),
        service_account("default", APP_NS), service_account("default", "kube-system"),
        service_account("coredns", "kube-system"),
        *coredns_rbac(),
        configmap("coredns", "kube-system", {"Corefile": corefiles["coredns"]}),
        configmap("nodelocaldns", "kube-system", {"Corefile": corefiles["nodelocal"]}),
        kube_dns_service(ipv6),
        headless_service("backend", APP_NS, {"app": "backend"}, 80),
        coredns_pod("node", coredns_key),
        nodelocal_pod("node"), kube_proxy_pod("node"),
        backend_pod("node"), client_pod("pod", "node"),
    ]
