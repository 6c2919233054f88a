"""Issue 14's Done-when in the lab: the real kubectl v1.34 drives kubectl-podtriage against the
API stand-in, and the kubelet stand-in runs each ephemeral container and Job pod for real in
the matching lab namespace of a two-node cluster (tests/lab/cluster.py) whose node2 NodeLocal
cache serves a stale answer. Runs podtriage from the venv (``-m lab``) and from the image with
podman (``-m image``; PODTRIAGE_IMAGE, default localhost/podtriage:dev)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.kube.apiserver import ApiServer
from tests.kube.kubectl import ensure_kubectl
from tests.kube.kubelet import Kubelet, NetnsRunner, PodmanRunner
from tests.lab.cluster import ClusterLab

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / ".venv" / "bin" / "kubectl-podtriage"
NAME, GOOD, STALE = "www.example.org", "192.168.50.20", "192.168.50.77"
PODS = {"web-1a": ("node-1", "pod"), "web-1b": ("node-1", "pod1b"),
        "web-2a": ("node-2", "pod2a"), "web-2b": ("node-2", "pod2b")}

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def cluster_lab(lab):
    cl = ClusterLab(lab).up()
    try:
        cl.stale_cache(NAME, STALE)
        yield cl
    finally:
        cl.down()


def _standin(cl: ClusterLab, tmp: Path, runner):
    api = ApiServer().start()
    for ns in ("shop", "podtriage", "kube-system"):
        api.add_namespace(ns)
    api.add_node("node-1")
    api.add_node("node-2", taints=[{"key": "example.com/dedicated", "value": "dns",
                                    "effect": "NoSchedule"}])
    kubelet = Kubelet(api, runner, node_netns={"node-1": cl.ns("node"), "node-2": cl.ns("node2")})
    for pod, (node, short) in PODS.items():
        api.add_pod(pod, "shop", node=node, labels={"app": "web"})
        kubelet.pod_netns[("shop", pod)] = cl.ns(short)
    api.add_pod("db-1", "shop", node="node-1", labels={"app": "db"})
    kubelet.start()
    kubectl = ensure_kubectl()
    env = {"PATH": "%s:%s:/usr/sbin:/usr/bin:/sbin:/bin" % (kubectl.parent, PLUGIN.parent),
           "KUBECONFIG": str(api.kubeconfig(tmp / "kubeconfig", namespace="shop")),
           "HOME": str(tmp), "PODTRIAGE_POLL_INTERVAL": "0.2"}
    return api, kubelet, env


def _run(env, *args, image=None):
    e = dict(env)
    if image:
        e["PODTRIAGE_IMAGE"] = image
    return subprocess.run([str(PLUGIN), *args], capture_output=True, text=True, env=e,
                          timeout=300)


def check_pods_fleet(api, env, image=None):
    p = _run(env, "pods", "-l", "app=web", "-o", "json", "--", "diagnose", NAME, "--port", "80",
             image=image)
    assert p.returncode == 1, p.stderr + p.stdout[-2000:]
    d = json.loads(p.stdout)
    assert d["reports"] == 4, d.get("missing")
    assert d["verdict"] == "bad-answer"       # the fleet is its own reference
    differ = [f for f in d["findings"] if f["code"] == "answers-differ"]
    assert differ and differ[0]["data"]["nodes"] == ["node-2"]
    assert differ[0]["data"]["expected"] == [GOOD]
    groups = {tuple(g["nodes"]): g for g in d["groups"]}
    assert groups[("node-1",)]["verdict"] == "ok"
    assert groups[("node-1",)]["addresses"] == [GOOD]
    assert groups[("node-2",)]["addresses"] == [STALE]
    assert groups[("node-2",)]["servers"] == ["169.254.25.10"]
    assert sorted(groups[("node-2",)]["pods"]) == ["shop/web-2a", "shop/web-2b"]
    named = [f for f in d["findings"] if f["code"] == "node-differs"]
    assert len(named) == 1 and named[0]["data"]["node"] == "node-2"
    assert "169.254.25.10" in named[0]["summary"]
    # one ephemeral container per app=web pod, none in db-1
    patched = {r.path.split("/")[6] for r in api.requests
               if r.method == "PATCH" and r.path.endswith("/ephemeralcontainers")}
    assert patched == set(PODS)
    return d


def check_nodes_fleet(api, env, image=None):
    p = _run(env, "nodes", "--all", "-o", "json", image=image)     # Jobs in the context's ns
    assert p.returncode in (0, 1), p.stderr + p.stdout[-2000:]
    d = json.loads(p.stdout)
    assert d["reports"] == 2 and d["nodes"] == ["node-1", "node-2"], d
    assert {g["command"] for g in d["groups"]} == {"conntrack"}
    assert api.store.list("jobs") == []                       # cleaned up
    return d


def check_pod_mode(env, image=None):
    """One pod on the stale node, with a reference: podtriage's own verdict and exit code
    come back through the plugin."""
    p = _run(env, "web-2a", "--", "diagnose", NAME, "--port", "80", "--reference",
             "192.168.60.53", "-o", "json", image=image)
    assert p.returncode == 1, p.stderr
    d = json.loads(p.stdout[p.stdout.index("{"):])
    assert d["verdict"] == "bad-answer"
    assert d["context"] == {"pod": "web-2a", "namespace": "shop", "node": "node-2"}


def test_fleet_over_pods_and_nodes_from_the_venv(cluster_lab, tmp_path):
    api, kubelet, env = _standin(cluster_lab, tmp_path, NetnsRunner())
    try:
        check_pod_mode(env)
        check_pods_fleet(api, env)
        check_nodes_fleet(api, env)
    finally:
        kubelet.stop()
        api.stop()


@pytest.mark.image
def test_done_when_with_the_image(cluster_lab, tmp_path):
    image = os.environ.get("PODTRIAGE_IMAGE", "localhost/podtriage:dev")
    # Always through scripts/build-image, as tests/integration/test_image.py does: an image
    # left in storage by an older checkout must never stand in for this one (the layer cache
    # makes an up-to-date build take seconds).
    p = subprocess.run([str(ROOT / "scripts" / "build-image"), "-q", "--tag", image],
                       capture_output=True, text=True, timeout=1800)
    assert p.returncode == 0, "scripts/build-image failed:\n%s" % p.stderr[-4000:]
    api, kubelet, env = _standin(cluster_lab, tmp_path, PodmanRunner())
    try:
        d = check_pods_fleet(api, env, image=image)
        assert all(r.spec["image"] == image for r in kubelet.runs)
        check_nodes_fleet(api, env, image=image)
        check_pod_mode(env, image=image)
        # PodSecurity restricted: the restricted profile, podtriage degraded but answering
        api.add_namespace("secure", {"pod-security.kubernetes.io/enforce": "restricted"})
        api.add_pod("web-sec", "secure", node="node-1")
        kubelet.pod_netns[("secure", "web-sec")] = cluster_lab.ns("pod1b")
        p = _run(env, "web-sec", "-n", "secure", "--", "diagnose", NAME, "--port", "80",
                 "-o", "json", image=image)
        assert p.returncode == 0, p.stderr
        assert "using --profile=restricted" in p.stderr
        sec = json.loads(p.stdout[p.stdout.index("{"):])
        assert sec["verdict"] == "ok"
        assert any("needs NET_RAW" in n for n in sec["notes"]), sec["notes"]
        assert kubelet.runs[-1].spec["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    finally:
        kubelet.stop()
        api.stop()
