"""Issue 14's and 22's Done-when in the lab: the real kubectl v1.34 drives kubectl-podtriage
against the lab's real kube-apiserver and controllers, on the two-node cluster
(tests/lab/cluster.py) whose node2 NodeLocal cache serves a stale answer; the kubelet
stand-ins run each ephemeral container and Job pod in the matching lab namespace, from the
venv (``-m lab``) or from the image with podman (``-m image``; PODTRIAGE_IMAGE, default
localhost/podtriage:dev). The fleet: the four ``app=web`` pods of namespace wxwork (pod and
pod1b on node ``node``, pod2a and pod2b on ``node2``)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.kube.labkube import PluginRunner, runtime_images
from tests.lab.cluster import ClusterLab

ROOT = Path(__file__).resolve().parents[2]
NAME, GOOD, STALE = "www.example.org", "192.168.50.20", "192.168.50.77"
PODS = {"pod": "node", "pod1b": "node", "pod2a": "node2", "pod2b": "node2"}

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def cluster_lab(lab):
    cl = ClusterLab(lab).up()
    try:
        cl.stale_cache(NAME, STALE)
        yield cl
    finally:
        cl.down()


@pytest.fixture
def kube(cluster_lab, tmp_path):
    runner = PluginRunner(cluster_lab.lab, tmp_path)
    from tests.kube.labkube import Workloads

    runner.w = Workloads(cluster_lab.lab)
    runner.w.namespace("podtriage")
    yield runner
    runner.w.close()


def check_pods_fleet(kube, image=None):
    extra = {"PODTRIAGE_IMAGE": image} if image else {}
    p = kube.run("pods", "-l", "app=web", "-n", "wxwork", "-o", "json", "--", "diagnose", NAME,
                 "--port", "80", PODTRIAGE_PROGRESS="1", **extra)
    assert p.returncode == 1, p.stderr + p.stdout[-2000:]
    d = json.loads(p.stdout)
    assert d["reports"] == 4, d.get("missing")
    assert d["verdict"] == "bad-answer"       # the fleet is its own reference
    differ = [f for f in d["findings"] if f["code"] == "answers-differ"]
    assert differ and differ[0]["data"]["nodes"] == ["node2"]
    assert differ[0]["data"]["expected"] == [GOOD]
    groups = {tuple(g["nodes"]): g for g in d["groups"]}
    assert groups[("node",)]["verdict"] == "ok"
    assert groups[("node",)]["addresses"] == [GOOD]
    assert groups[("node2",)]["addresses"] == [STALE]
    assert groups[("node2",)]["servers"] == ["169.254.25.10"]
    assert sorted(groups[("node2",)]["pods"]) == ["wxwork/pod2a", "wxwork/pod2b"]
    named = [f for f in d["findings"] if f["code"] == "node-differs"]
    assert len(named) == 1 and named[0]["data"]["node"] == "node2"
    assert "169.254.25.10" in named[0]["summary"]
    # one ephemeral container per app=web pod (the real server's PATCH), none in backend
    patched = {r.name for r in p.requests if r.subresource == "ephemeralcontainers" and r.code == 200}
    assert patched == set(PODS)
    # progress: each pod's end with the counts and its time
    done = [x for x in p.stderr.splitlines() if "done," in x]
    assert len(done) == 4 and "[4/4 done, 0 running]" in done[-1], p.stderr
    return d, p


def check_nodes_fleet(kube, image=None):
    extra = {"PODTRIAGE_IMAGE": image} if image else {}
    p = kube.run("nodes", "--all", "-n", "podtriage", "-o", "json", **extra)
    assert p.returncode in (0, 1), p.stderr + p.stdout[-2000:]
    d = json.loads(p.stdout)
    assert d["reports"] == 2 and d["nodes"] == ["node", "node2"], d
    assert {g["command"] for g in d["groups"]} == {"conntrack"}
    jobs = [r for r in p.requests if r.resource == "jobs" and r.verb == "create"]
    assert len(jobs) == 2 and all(r.code == 201 for r in jobs)
    # issue 26: both nodes' conntrack gets kube-dns' live endpoint, read once from the real
    # EndpointSlice; no node report names a dead target, so the fleet names none
    for job in jobs:
        assert job.body["spec"]["template"]["spec"]["containers"][0]["args"] == [
            "conntrack", "--dns-endpoints", "10.244.0.3", "-o", "json"]
    assert [r.verb for r in p.requests if r.resource == "endpointslices"] == ["list"]
    assert d["stale_dns_targets"] == []
    assert kube.w.api.get("/apis/batch/v1/namespaces/podtriage/jobs")["items"] == []   # cleaned up
    return d, p


def check_pod_mode(kube, image=None):
    """One pod on the stale node, with a reference: podtriage's own verdict and exit code
    come back through the plugin."""
    extra = {"PODTRIAGE_IMAGE": image} if image else {}
    p = kube.run("pod2a", "-n", "wxwork", "--", "diagnose", NAME, "--port", "80", "--reference",
                 "192.168.60.53", "-o", "json", **extra)
    assert p.returncode == 1, p.stderr
    d = json.loads(p.stdout[p.stdout.index("{"):])
    assert d["verdict"] == "bad-answer"
    assert d["context"] == {"pod": "pod2a", "namespace": "wxwork", "node": "node2"}
    return d, p


def test_fleet_over_pods_and_nodes_from_the_venv(kube):
    check_pod_mode(kube)
    check_pods_fleet(kube)
    d, _ = check_nodes_fleet(kube)
    # each node's own conntrack report: node-cache's NOTRACK leaves no entry for the cache
    assert all(g["count"] for g in d["groups"])


def test_node_debug_on_the_second_node(kube):
    p = kube.run("node/node2", "-n", "podtriage", "--", "conntrack", "-o", "json")
    assert p.returncode in (0, 1), p.stderr
    d = json.loads(p.stdout)
    assert d["context"]["node"] == "node2"
    # node2's own network namespace: its kube-proxy's DNAT of kube-dns, its own NodeLocal
    assert d["netns"]["interfaces"] and "10.0.12.2" in json.dumps(d["netns"]["interfaces"])


@pytest.mark.image
def test_done_when_with_the_image(kube, cluster_lab):
    image = os.environ.get("PODTRIAGE_IMAGE", "localhost/podtriage:dev")
    # Always through scripts/build-image, as tests/integration/test_image.py does: an image
    # left in storage by an older checkout must never stand in for this one (the layer cache
    # makes an up-to-date build take seconds).
    p = subprocess.run([str(ROOT / "scripts" / "build-image"), "-q", "--tag", image],
                       capture_output=True, text=True, timeout=1800)
    assert p.returncode == 0, "scripts/build-image failed:\n%s" % p.stderr[-4000:]
    runtime_images(cluster_lab.lab, {image: "podman"})
    try:
        d, p = check_pods_fleet(kube, image=image)
        check_nodes_fleet(kube, image=image)
        sec, p = check_pod_mode(kube, image=image)
        # the termination message podtriage writes is shown by the plugin (podman mounts
        # /dev/termination-log; the kubelet stand-in reads it into the status)
        assert "podtriage diagnose %s: bad-answer" % NAME in p.stderr
        # PodSecurity restricted: the restricted profile, podtriage degraded but answering
        kube.w.namespace("secure", enforce="restricted")
        kube.w.pod("web-sec", "secure", netns="pod1b")
        p = kube.run("web-sec", "-n", "secure", "--", "diagnose", NAME, "--port", "80", "-o",
                     "json", PODTRIAGE_IMAGE=image)
        assert p.returncode == 0, p.stderr
        assert "using --profile=restricted" in p.stderr
        sec = json.loads(p.stdout[p.stdout.index("{"):])
        assert sec["verdict"] == "ok"
        assert any("needs NET_RAW" in n for n in sec["notes"]), sec["notes"]
        spec = kube.w.ephemeral("secure", "web-sec")[-1]
        assert spec["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    finally:
        runtime_images(cluster_lab.lab, {})
