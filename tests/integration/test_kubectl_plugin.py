"""kubectl-podtriage (toolkit.kube) against the lab's REAL Kubernetes: kube-apiserver 1.34.4
(RBAC, PodSecurity and NodeRestriction admission), kube-controller-manager (Job,
TTL-after-finished, garbage collector), the real kubectl v1.34 (from PyPI), and the kubelet
stand-in (tests/kube/kubelet.py), which runs the ephemeral containers, Job pods and node
debugging pods in lab network namespaces with the venv's podtriage (the image with podman:
tests/integration/test_fleet_lab.py -m image) and serves the logs kube-apiserver proxies.
What kubectl sent is read from the API server's audit log. Marked ``lab``: needs root.
The fleet over two nodes is tests/integration/test_fleet_lab.py.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.kube.kubectl import KUBECTL_MINOR, client_version, ensure_kubectl
from tests.kube.labkube import PluginRunner, Workloads

pytestmark = pytest.mark.lab
ROOT = Path(__file__).resolve().parents[2]
SHIM = ROOT / "scripts" / "kubectl-podtriage"
ENFORCE = "pod-security.kubernetes.io/enforce"
NETADMIN = {"capabilities": {"add": ["NET_ADMIN", "NET_RAW"]}}
KUBE_DNS_POD = "10.244.0.3"          # the CoreDNS pod behind kube-dns (tests/lab)


@pytest.fixture(scope="module")
def kube(lab, tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    runner = PluginRunner(lab, home)
    w = Workloads(lab)
    runner.w = w
    w.namespace("shop")
    w.pod("web-1", "shop", containers=("app", "sidecar"), labels={"app": "web"})
    yield runner
    w.close()


@pytest.fixture
def ns(kube):
    """A fresh namespace per test (ephemeral containers stay in their pods forever)."""
    name = "t-%s" % secrets.token_hex(3)
    kube.w.namespace(name)
    return name


def _changes(p):
    return [r for r in p.requests if r.changes]


def _patches(p):
    return [r for r in p.requests if r.verb == "patch" and r.subresource == "ephemeralcontainers"]


def _env(spec):
    return {e["name"]: e.get("value") for e in spec.get("env") or []}


def test_real_kubectl_is_v1_34():
    assert client_version(ensure_kubectl()).startswith("v%s." % KUBECTL_MINOR)


def test_pod_mode_targets_first_container_with_netadmin(kube, ns):
    kube.w.pod("web", ns, containers=("app", "sidecar"))
    p = kube.run("web", "-n", ns, "--", "resolvconf", "--file", "/dev/null", "-o", "json")
    assert p.returncode == 1, p.stderr                  # podtriage's exit code, from the status
    (patch,) = _patches(p)
    assert patch.code == 200 and patch.path == "/api/v1/namespaces/%s/pods/web/ephemeralcontainers" % ns
    (spec,) = kube.w.ephemeral(ns, "web")               # what the real server stored
    assert spec["targetContainerName"] == "app"
    assert spec["securityContext"] == NETADMIN
    assert spec["image"] == "ghcr.io/podtriage/podtriage:0.1"
    assert spec["command"] == ["podtriage", "resolvconf", "--file", "/dev/null", "-o", "json"]
    assert spec["name"].startswith("podtriage-")
    assert not spec.get("stdin") and not spec.get("tty")          # not attached: logs -f instead
    assert _env(spec) == {"PODTRIAGE_POD": "web", "PODTRIAGE_NAMESPACE": ns,
                          "PODTRIAGE_NODE": "node"}
    doc = json.loads(p.stdout)                                     # the log passes through
    assert doc["command"] == "resolvconf" and doc["verdict"] != "ok"
    assert doc["context"] == {"pod": "web", "namespace": ns, "node": "node"}
    logs = [r for r in p.requests if r.subresource == "log"]
    assert logs and "follow=true" in logs[0].uri and "container=%s" % spec["name"] in logs[0].uri
    status = kube.w.get_pod(ns, "web")["status"]["ephemeralContainerStatuses"][0]
    assert status["state"]["terminated"]["exitCode"] == 1


def test_explicit_container_image_and_exit_code_from_status(kube, ns):
    kube.w.pod("web", ns, containers=("app", "sidecar"))
    p = kube.run("web", "-n", ns, "-c", "sidecar", "--", "resolvconf", "--file", "/nonexistent")
    assert p.returncode == 3, p.stderr
    (spec,) = kube.w.ephemeral(ns, "web")
    assert spec["targetContainerName"] == "sidecar"


def test_default_container_annotation_picks_the_application(kube, ns):
    kube.w.pod("meshed", ns, containers=("linkerd-proxy", "app"),
               annotations={"kubectl.kubernetes.io/default-container": "app"})
    p = kube.run("meshed", "-n", ns, "--", "resolvconf")
    assert p.returncode == 0, p.stderr
    assert kube.w.ephemeral(ns, "meshed")[0]["targetContainerName"] == "app"


def test_unknown_container_is_could_not_observe(kube):
    p = kube.run("web-1", "-n", "shop", "-c", "nope", "--", "resolvconf")
    assert p.returncode == 3 and "no container nope" in p.stderr
    assert not _changes(p)


def test_image_from_environment_and_context_namespace(kube, ns):
    kube.w.pod("web", ns)
    p = kube.run("web", "--", "resolvconf", namespace=ns, PODTRIAGE_IMAGE="reg.example/pt:1")
    assert p.returncode == 3, p.stderr          # the node cannot pull it: ErrImagePull, fast
    assert "ErrImagePull" in p.stderr and "pull access denied" in p.stderr
    (patch,) = _patches(p)
    assert patch.namespace == ns                 # the context's namespace
    assert kube.w.ephemeral(ns, "web")[0]["image"] == "reg.example/pt:1"


def test_image_that_cannot_be_pulled_fails_fast(kube, ns):
    kube.w.pod("web", ns)
    t0 = time.monotonic()
    p = kube.run("web", "-n", ns, "--image", "nope.example/x:1", "--", "resolvconf")
    assert p.returncode == 3 and time.monotonic() - t0 < 30
    assert "ErrImagePull" in p.stderr or "ImagePullBackOff" in p.stderr


def test_node_mode_is_kubectl_debug_node_and_deletes_its_pod(kube, ns):
    p = kube.run("--node", "node", "-n", ns, "--", "conntrack", "-o", "json")
    assert p.returncode in (0, 1), p.stderr
    doc = json.loads(p.stdout)
    assert doc["command"] == "conntrack" and doc["context"]["node"] == "node"
    (create,) = [r for r in p.requests if r.verb == "create" and r.resource == "pods"]
    spec = create.body["spec"]
    assert create.code == 201 and spec["nodeName"] == "node"
    assert spec["hostNetwork"] and spec["hostPID"]
    assert spec["containers"][0]["securityContext"] == NETADMIN
    # the live endpoint of kube-dns, from its real EndpointSlice (issue 26)
    assert spec["containers"][0]["command"] == ["podtriage", "conntrack", "--dns-endpoints",
                                                KUBE_DNS_POD, "-o", "json"]
    deletes = [r for r in p.requests if r.verb == "delete" and r.resource == "pods"]
    assert [d.name for d in deletes] == [create.body["metadata"]["name"]]
    kube.w.api.wait_for("/api/v1/namespaces/%s/pods" % ns, lambda x: not x["items"], timeout=20)
    p = kube.run("node/node", "-n", ns, "--", "resolvconf", "--file", "/dev/null")
    assert p.returncode == 1, p.stderr           # node/NAME as kubectl spells it


def test_corefiles_travel_as_env_and_reach_diagnose(kube):
    # the lab's real ConfigMaps: kube-system/coredns and nodelocaldns (the seed's)
    p = kube.run("pod", "-n", "wxwork", "--corefiles", "--", "diagnose", "api.corp.example",
                 "--port", "80", "-o", "json")
    assert p.returncode == 1, p.stderr
    gets = [(r.name, r.code) for r in p.requests if r.resource == "configmaps"]
    assert gets == [("nodelocaldns", 200), ("node-local-dns", 404), ("coredns", 200),
                    ("coredns-custom", 404)]
    assert "no ConfigMap kube-system/node-local-dns (skipped)" in p.stderr
    spec = kube.w.ephemeral("wxwork", "pod")[-1]
    assert {"PODTRIAGE_CM_NODELOCALDNS", "PODTRIAGE_CM_COREDNS"} <= set(_env(spec))
    assert spec["command"][:2] == ["bash", "-c"]
    doc = json.loads(p.stdout)
    assert doc["verdict"] == "bad-answer"
    # podtriage read both Corefiles through the /dev/fd pipes and traced the stub block
    assert "corefile" in doc["support"]
    assert "corefile-stub-forward" in {f["code"] for f in doc["findings"]}
    evidence = json.dumps([f["evidence"] for f in doc["findings"]])
    assert "/dev/fd/" in evidence and "kube-system/nodelocaldns:Corefile" in evidence
    assert "kube-system/coredns:Corefile" in evidence


def test_pod_not_found_is_could_not_observe(kube):
    p = kube.run("nope", "-n", "shop", "--", "resolvconf")
    assert p.returncode == 3 and "cannot read pod nope" in p.stderr
    assert not _changes(p)


def test_kubectl_global_flags_pass_through(kube, ns, tmp_path):
    kube.w.pod("web", ns)
    cfg = json.loads(kube.kubeconfig().read_text())
    cfg["contexts"].append({"name": "prod", "context": {"cluster": "lab", "user": "admin",
                                                          "namespace": ns}})
    other = tmp_path / "other-kubeconfig"
    other.write_text(json.dumps(cfg))
    p = kube.run("web", "--context", "prod", "--kubeconfig=%s" % other, "--request-timeout=20s",
                 "--as", "triager", "--as-group=system:masters", "--", "resolvconf",
                 KUBECONFIG="/nonexistent")
    assert p.returncode == 0, p.stderr
    (patch,) = _patches(p)
    assert patch.namespace == ns                            # prod's namespace: flags applied
    assert all(r.impersonated == "triager" for r in p.requests), {r.impersonated for r in p.requests}
    # --request-timeout goes to every call but the log stream it would cut
    assert any("timeout=20s" in r.uri for r in p.requests)
    assert not any("timeout=20s" in r.uri for r in p.requests if r.subresource == "log")


@pytest.mark.parametrize("spelling", [["-n{ns}"], ["--namespace={ns}"], ["-n={ns}"]])
def test_namespace_spellings(kube, ns, spelling):
    kube.w.pod("web", ns)
    p = kube.run("web", *[s.format(ns=ns) for s in spelling], "-q", "--", "resolvconf")
    assert p.returncode == 0, p.stderr
    assert _patches(p)[0].namespace == ns


def test_custom_profile_is_kubectl_debugs(kube, ns, tmp_path):
    kube.w.pod("web", ns)
    custom = tmp_path / "custom.yaml"
    custom.write_text("env:\n- {name: EXTRA, value: '1'}\nsecurityContext:\n  readOnlyRootFilesystem: true\n")
    p = kube.run("web", "-n", ns, "--custom", str(custom), "--", "resolvconf")
    assert p.returncode == 0, p.stderr
    spec = kube.w.ephemeral(ns, "web")[0]
    assert _env(spec)["EXTRA"] == "1" and spec["securityContext"]["readOnlyRootFilesystem"] is True
    assert spec["securityContext"]["capabilities"] == NETADMIN["capabilities"]    # merged
    # what a real server refuses in an ephemeral container is refused, and nothing is added
    custom.write_text("resources:\n  limits: {memory: 128Mi}\n")
    p = kube.run("web", "-n", ns, "--custom", str(custom), "--", "resolvconf")
    assert p.returncode == 3 and "cannot be set for an Ephemeral Container" in p.stderr
    assert len(kube.w.ephemeral(ns, "web")) == 1
    p = kube.run("web", "-n", ns, "--custom", str(tmp_path / "missing.yaml"), "--", "resolvconf")
    assert p.returncode == 3 and not _changes(p)


def test_runbook_runs_the_image_copy(kube):
    p = kube.run("pod", "-n", "wxwork", "--runbook", "service-unreachable", "--",
                 "www.example.org", "80", PODTRIAGE_OUT="/tmp")
    assert p.returncode == 0, p.stderr + p.stdout
    spec = kube.w.ephemeral("wxwork", "pod")[-1]
    assert spec["securityContext"] == NETADMIN
    assert spec["command"] == ["bash", "/opt/podtriage/runbooks/service-unreachable.sh",
                               "www.example.org", "80"]
    assert "verdict ok (exit 0)" in p.stdout
    # the runbook's JSON reaches the plugin's stdout as NDJSON (one document, one line)
    docs = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
    assert docs and docs[-1]["verdict"] == "ok" and docs[-1]["command"] == "diagnose"


# ---------------------------------------------------------------- PodSecurity and profiles
PROFILES = ["netadmin", "general", "baseline", "restricted", "sysadmin", "legacy"]
# what Pod Security Admission (the real one) admits, per level: the Pod Security Standards
ADMITS = {"privileged": set(PROFILES), "baseline": {"baseline", "restricted", "legacy"},
          "restricted": {"restricted"}}


@pytest.mark.parametrize("level", ["privileged", "baseline", "restricted"])
def test_each_profile_under_each_podsecurity_level(kube, level):
    """The real admission decides: every kubectl debug profile, forced, under every level,
    with --no-retry (a refusal is reported with the exact command; nothing is created)."""
    from toolkit.kube.specs import PROFILE_SECURITY, Profile

    name = "ps-%s-%s" % (level[:4], secrets.token_hex(2))
    kube.w.namespace(name, enforce=level)
    for profile in PROFILES:
        kube.w.pod(profile, name)
        p = kube.run(profile, "-n", name, "--profile", profile, "--no-retry", "--", "resolvconf")
        if profile in ADMITS[level]:
            assert p.returncode == 0, (level, profile, p.stderr)
            spec = kube.w.ephemeral(name, profile)[0]
            # what kubectl built is what --dry-run shows for the profile
            assert spec.get("securityContext") in (PROFILE_SECURITY[Profile(profile)] or None,
                                                   None), (profile, spec.get("securityContext"))
        else:
            assert p.returncode == 3, (level, profile, p.stderr)
            assert "violates PodSecurity" in p.stderr and "nothing was created" in p.stderr
            assert kube.w.ephemeral(name, profile) == []
            (patch,) = _patches(p)
            assert patch.code == 403


@pytest.mark.parametrize("level,profile,sc", [
    ("baseline", "baseline", None),
    ("restricted", "restricted", {"allowPrivilegeEscalation": False,
                                  "capabilities": {"drop": ["ALL"]}, "runAsNonRoot": True,
                                  "seccompProfile": {"type": "RuntimeDefault"}}),
])
def test_podsecurity_picks_a_profile_the_namespace_admits(kube, level, profile, sc):
    name = "pl-%s-%s" % (level[:4], secrets.token_hex(2))
    kube.w.namespace(name, enforce=level)
    kube.w.pod("web", name)
    p = kube.run("web", "-n", name, "--", "diagnose", "www.example.org", "--port", "80", "-o", "json")
    assert p.returncode == 0, p.stderr
    assert "enforces PodSecurity %s" % level in p.stderr and "degraded" in p.stderr
    spec = kube.w.ephemeral(name, "web")[0]
    assert spec.get("securityContext") == sc
    doc = json.loads(p.stdout)
    assert doc["verdict"] == "ok"
    assert any("NET_RAW" in n for n in doc["notes"]), doc["notes"]      # degraded, and says so


def test_podsecurity_refusal_is_retried_once_with_the_admitted_profile(kube):
    """triager cannot read namespaces (RBAC): the plugin tries netadmin, the admission
    refuses (nothing created), the plugin retries once with baseline and says so."""
    name = "rt-%s" % secrets.token_hex(2)
    kube.w.namespace(name, enforce="baseline")
    kube.w.pod("web", name)
    r = readme_roles()
    pods = json.loads(json.dumps(r["podtriage-pods"]))
    pods["metadata"]["namespace"] = name
    kube.w.grant(name, pods)
    kube.w.settle([(True, {"verb": "patch", "resource": "pods", "subresource": "ephemeralcontainers",
                           "namespace": name}),
                   (False, {"verb": "get", "resource": "namespaces", "name": name})])
    try:
        p = kube.run("web", "-n", name, "--no-retry", "--", "resolvconf", user="triager")
        assert p.returncode == 3, p.stderr
        assert "kubectl podtriage web -n %s --profile=baseline -- resolvconf" % name in p.stderr
        assert kube.w.ephemeral(name, "web") == []
        p = kube.run("web", "-n", name, "--", "resolvconf", user="triager")
        assert p.returncode == 0, p.stderr
        assert "refused --profile=netadmin (nothing was created): retrying once with " \
               "--profile=baseline" in p.stderr
        assert [x.code for x in _patches(p)] == [403, 200]
        assert kube.w.ephemeral(name, "web")[0].get("securityContext") is None
    finally:
        kube.w.revoke(name)


def test_forced_netadmin_in_a_baseline_namespace_gives_the_command(kube):
    name = "fb-%s" % secrets.token_hex(2)
    kube.w.namespace(name, enforce="baseline")
    kube.w.pod("web", name)
    p = kube.run("web", "-n", name, "--profile", "netadmin", "--", "resolvconf")
    assert p.returncode == 3, p.stderr
    assert "violates PodSecurity" in p.stderr
    assert "--profile=baseline -- resolvconf" in p.stderr
    assert kube.w.ephemeral(name, "web") == []


# ---------------------------------------------------------------- check before touching
@pytest.mark.parametrize("args", [
    [],                                          # no pod
    ["web-1"],                                   # no podtriage arguments
    ["web-1", "--bogus", "--", "resolvconf"],
    ["web-1", "web-2", "--", "resolvconf"],
    ["web-1", "-n"],
    ["--node", "w", "web-1"],
    ["--node", "w", "-c", "app"],
    ["web-1", "--corefiles", "--", "resolve", "x"],
    ["web-1", "--runbook", "rm-rf"],
    ["web-1", "--runbook", "service-unreachable", "--", "x", "notaport"],
    ["--node", "w", "--runbook", "dns-slow"],
    ["pods", "--", "diagnose", "x"],             # no selector
    ["pods", "-l", "app=web", "-n", "a", "-A", "--", "diagnose", "x"],
    ["pods", "-l", "app=web"],
    ["pods", "-l", "app=web", "--max", "lots", "--", "diagnose", "x"],
    ["nodes"],                                   # none of --node, -l, --all
    ["nodes", "--all", "-l", "a=b"],
    ["web-1", "--profile", "sudo", "--", "resolvconf"],
    ["web-1", "-o", "yaml", "--", "resolvconf"],
    # issue 25: everything after -- is podtriage's own parser's before anything is created
    ["web-1", "--", "diagnos", "api.corp.example"],
    ["web-1", "--", "diagnose"],
    ["web-1", "--", "diagnose", "x", "--port", "99999"],
    ["web-1", "--", "diagnose", "x", "--dry-run"],
    ["web-1", "--", "diagnose", "x", "--corefiles"],
    ["web-1", "--", "diagnose", "bad name"],
    ["pods", "-l", "app=web", "--", "diagnose", "x", "--deadline", "nan"],
    ["nodes", "--all", "--", "conntrack", "race-test"],
])
def test_bad_usage_exits_2_and_touches_nothing(kube, args):
    p = kube.run(*args)
    assert p.returncode == 2, (args, p.stderr)
    assert "Usage:" in p.stderr and "Traceback" not in p.stderr
    assert not _changes(p), [(r.verb, r.uri) for r in _changes(p)]
    assert len(p.stderr.splitlines()) <= 3, p.stderr


def test_plugin_flag_after_dashdash_says_where_it_goes(kube):
    p = kube.run("web-1", "-n", "shop", "--", "diagnose", "x", "--corefiles")
    assert p.returncode == 2
    assert "--corefiles is an option of kubectl podtriage" in p.stderr and "before --" in p.stderr
    assert not p.requests                       # not even a read


def test_help_after_dashdash_is_printed_here(kube):
    p = kube.run("web-1", "-n", "shop", "--", "diagnose", "--help")
    assert p.returncode == 0 and "Usage: podtriage diagnose" in p.stdout
    assert "nothing was started" in p.stderr and not p.requests


def test_help_version_and_kubectl_finds_the_plugin(kube):
    p = kube.run("--help")
    assert p.returncode == 0 and "Usage:" in p.stdout and "--profile=netadmin" in p.stdout
    p = kube.run("--version")
    assert p.returncode == 0 and p.stdout.startswith("kubectl-podtriage 0.1.0")
    p = kube.kubectl_run("podtriage", "--help")
    assert p.returncode == 0 and "Usage:" in p.stdout, p.stderr
    p = kube.kubectl_run("plugin", "list")
    assert "kubectl-podtriage" in p.stdout


def test_completion_through_kubectl(kube):
    # kubectl >= 1.26 completes a plugin by running kubectl_complete-podtriage
    p = kube.kubectl_run("__complete", "podtriage", "-n", "shop", "")
    assert p.returncode == 0, p.stderr
    words = p.stdout.split()
    assert {"pods", "nodes", "web-1", "node/node"} <= set(words), words
    assert words[-1] == ":4"
    p = kube.kubectl_run("__complete", "podtriage", "web-1", "-n", "shop", "--", "diag")
    assert p.stdout.split()[0] == "diagnose", p.stdout
    p = kube.kubectl_run("__complete", "podtriage", "web-1", "-n", "shop", "-c", "")
    assert set(p.stdout.split()[:-1]) == {"app", "sidecar"}
    p = kube.kubectl_run("__complete", "podtriage", "--profile", "")
    assert "sysadmin" in p.stdout.split()
    p = kube.kubectl_run("__complete", "podtriage", "-n", "")
    assert {"shop", "wxwork", "kube-system"} <= set(p.stdout.split())


def test_old_script_is_a_shim_to_the_console_script(kube, ns):
    kube.w.pod("web", ns)
    p = kube.run("web", "-n", ns, "--", "resolvconf", plugin=SHIM)
    assert p.returncode == 0, p.stderr
    assert _patches(p)
    assert subprocess.run(["bash", "-n", str(SHIM)]).returncode == 0
    sc = subprocess.run(["shellcheck", "-S", "warning", str(SHIM)], capture_output=True, text=True)
    assert sc.returncode == 0, sc.stdout


def test_progress_lines(kube, ns):
    kube.w.pod("slow", ns)
    p = kube.run("slow", "-n", ns, "--", "capture", "--duration", "3", "-o", "json",
                 PODTRIAGE_PROGRESS="1")
    assert p.returncode in (0, 1), p.stderr
    lines = [x for x in p.stderr.splitlines() if "s] " in x]
    assert any("ephemeral container" in x and "added" in x for x in lines), p.stderr
    assert any("podtriage started, following its log" in x for x in lines), p.stderr
    p = kube.run("slow", "-n", ns, "-q", "--", "resolvconf", PODTRIAGE_PROGRESS="1")
    assert p.returncode == 0 and "s] " not in p.stderr


# ---------------------------------------------------------------- fleets
def test_pods_fleet_merges_every_pod(kube, ns):
    for i in range(3):
        kube.w.pod("api-%d" % i, ns, labels={"app": "api"})
    kube.w.pod("other", ns, labels={"app": "db"})
    p = kube.run("pods", "-l", "app=api", "-n", ns, "-ojson", "--parallel", "2", "--",
                 "resolvconf", PODTRIAGE_PROGRESS="1")
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert d["reports"] == 3 and d["verdicts"] == {"ok": 3}
    assert sorted(r.name for r in _patches(p)) == ["api-0", "api-1", "api-2"]
    for i in range(3):
        (spec,) = kube.w.ephemeral(ns, "api-%d" % i)
        assert spec["command"] == ["podtriage", "resolvconf", "-o", "json"]
    lists = [r for r in p.requests if r.verb == "list" and r.resource == "pods"]
    assert "labelSelector=app%3Dapi" in lists[0].uri
    done = [x for x in p.stderr.splitlines() if "done," in x]
    assert len(done) == 3 and "[3/3 done, 0 running]" in done[-1], p.stderr


def test_pods_fleet_above_max_asks_for_yes(kube, ns):
    for i in range(3):
        kube.w.pod("api-%d" % i, ns, labels={"app": "api"})
    p = kube.run("pods", "-l", "app=api", "-n", ns, "--max", "2", "--", "resolvconf")
    assert p.returncode == 2
    assert "cannot be removed" in p.stderr and "--yes" in p.stderr
    assert not _changes(p)
    p = kube.run("pods", "-l", "app=api", "-n", ns, "--max", "2", "--yes", "-o", "json", "--",
                 "resolvconf")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["reports"] == 3 and len(_patches(p)) == 3


def test_pods_fleet_one_deadline_for_all(kube, ns):
    kube.w.pod("api-0", ns, labels={"app": "api"})
    kube.w.pod("api-1", ns, labels={"app": "api"}, netns=None)   # its container never starts
    t0 = time.monotonic()
    p = kube.run("pods", "-l", "app=api", "-n", ns, "--timeout", "8", "-o", "json", "--", "resolvconf")
    took = time.monotonic() - t0
    assert took < 25, took
    d = json.loads(p.stdout)
    assert d["reports"] == 1 and d["verdict"] == "indeterminate"
    assert d["missing"][0]["where"] == "pod %s/api-1" % ns
    assert p.returncode == 5                  # indeterminate: could not tell


def test_nodes_fleet_one_job_per_node_merged_and_cleaned_up(kube, ns):
    p = kube.run("nodes", "--all", "-n", ns, "-o", "json")
    assert p.returncode in (0, 1), p.stderr
    d = json.loads(p.stdout)
    assert d["reports"] == 1 and d["nodes"] == ["node"], d
    (post,) = [r for r in p.requests if r.verb == "create" and r.resource == "jobs"]
    assert post.code == 201 and "fieldValidation=Strict" in post.uri
    job = post.body
    t = job["spec"]["template"]["spec"]
    c = t["containers"][0]
    assert c["args"] == ["conntrack", "--dns-endpoints", KUBE_DNS_POD, "-o", "json"]
    assert t["tolerations"] == [{"operator": "Exists"}]
    assert t["securityContext"]["runAsUser"] == 65532 and t["securityContext"]["runAsNonRoot"]
    assert set(c["securityContext"]["capabilities"]["add"]) == {"NET_ADMIN", "NET_RAW"}
    assert job["spec"]["activeDeadlineSeconds"] > 0 and job["spec"]["ttlSecondsAfterFinished"] == 600
    assert [r.verb for r in p.requests if r.resource == "jobs"][-1] == "delete"
    assert kube.w.api.get("/apis/batch/v1/namespaces/%s/jobs" % ns)["items"] == []


def test_nodes_job_pods_come_from_the_job_controller_and_ttl_cleans_up(kube, ns):
    """A plugin killed with SIGKILL cannot delete its Jobs: the real Job controller made their
    pod, and the real TTL-after-finished controller removes the finished Job (and the garbage
    collector its pod) after --job-ttl."""
    proc, _ = kube.popen("nodes", "--all", "-n", ns, "--job-ttl", "3", "--", "conntrack")
    api = kube.w.api
    try:
        pods = api.wait_for("/api/v1/namespaces/%s/pods" % ns, lambda x: x["items"], timeout=30)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)        # the plugin and its kubectl calls
        proc.communicate(timeout=30)
    pod = pods["items"][0]
    owner = pod["metadata"]["ownerReferences"][0]
    assert owner["kind"] == "Job" and owner["controller"] is True
    assert pod["metadata"]["managedFields"][0]["manager"] == "kube-controller-manager"
    job = api.get("/apis/batch/v1/namespaces/%s/jobs/%s" % (ns, owner["name"]))
    assert job["spec"]["ttlSecondsAfterFinished"] == 3
    api.wait_for("/apis/batch/v1/namespaces/%s/jobs" % ns, lambda x: not x["items"], timeout=60)
    api.wait_for("/api/v1/namespaces/%s/pods" % ns, lambda x: not x["items"], timeout=60)


def test_nodes_refused_in_a_baseline_namespace(kube):
    name = "nb-%s" % secrets.token_hex(2)
    kube.w.namespace(name, enforce="baseline")
    p = kube.run("nodes", "--all", "-n", name)
    assert p.returncode == 3 and "refuses hostNetwork" in p.stderr
    assert not _changes(p)
    p = kube.run("--node", "node", "-n", name)
    assert p.returncode == 3 and "refuses hostNetwork" in p.stderr and not _changes(p)


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_nodes_interrupted_deletes_its_jobs(kube, ns, sig):
    proc, mark = kube.popen("nodes", "--all", "-n", ns, "--", "capture", "--duration", "30",
                            "--deadline", "40")
    api = kube.w.api
    try:
        api.wait_for("/api/v1/namespaces/%s/pods" % ns, lambda x: any(
            (i.get("status") or {}).get("phase") == "Running" for i in x["items"]), timeout=30)
        t0 = time.monotonic()
        proc.send_signal(getattr(signal, sig))
        out, err = proc.communicate(timeout=45)
        assert time.monotonic() - t0 < 15, err    # the Job's pod would run 25 s more
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "deleting this run's Jobs" in err
    deletes = [r for r in kube.audit.since(mark) if r.verb == "delete" and r.resource == "jobs"]
    assert deletes and deletes[0].code == 200
    api.wait_for("/apis/batch/v1/namespaces/%s/jobs" % ns, lambda x: not x["items"], timeout=30)


def test_dry_run_prints_manifests_the_real_server_accepts(kube, tmp_path):
    p = kube.run("nodes", "--node", "worker-1", "--node", "w" * 80, "--dry-run", "--image",
                 "reg.example/pt:1")
    assert p.returncode == 0, p.stderr
    # without contacting the cluster (a log stream of an earlier test's Job is audited when it
    # ends, which may fall in this window: it is not this run's)
    assert not [r for r in p.requests if "/log" not in r.uri]
    jobs = list(yaml.safe_load_all(p.stdout))
    assert len(jobs) == 2 and all(len(j["metadata"]["name"]) <= 63 for j in jobs)
    for j in jobs:
        j["metadata"]["namespace"] = "shop"
        path = tmp_path / "job.json"
        path.write_text(json.dumps(j))
        check = kube.kubectl_run("create", "--dry-run=server", "--validate=strict", "-f", str(path))
        assert check.returncode == 0, check.stderr
    p = kube.run("pods", "-l", "app=web", "--dry-run", "--", "resolvconf")
    assert p.returncode == 0, p.stderr
    eph = yaml.safe_load(p.stdout)["ephemeralContainers"][0]
    assert eph["securityContext"] == NETADMIN
    p = kube.run("--node", "node", "--dry-run", "--", "conntrack")
    assert p.returncode == 0 and p.stdout.startswith("kubectl debug node/node ")


# ---------------------------------------------------------------- RBAC of the README
def readme_roles() -> dict[str, dict]:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("### RBAC"):]
    section = section[:section.index("\n## ")]
    roles = {}
    for block in section.split("```yaml")[1:]:
        for d in yaml.safe_load_all(block.split("```")[0]):
            roles[d["metadata"]["name"]] = d
    return roles


def _in(role: dict, namespace: str) -> dict:
    out = json.loads(json.dumps(role))
    if out["kind"] == "Role" and out["metadata"]["namespace"] in ("shop", "podtriage"):
        out["metadata"]["namespace"] = namespace
    return out


def _without(role: dict, i: int) -> dict:
    out = json.loads(json.dumps(role))
    del out["rules"][i]
    return out


# each mode with the Roles the README gives it; every rule is needed by at least one of them
MODES = {
    "pod": (["podtriage-pods", "podtriage-read-namespaces", "podtriage-corefiles",
             "podtriage-dns-endpoints"],
            ["web", "--corefiles", "--", "diagnose", "www.example.org", "-o", "json"]),
    "pods": (["podtriage-pods", "podtriage-read-namespaces"],
             ["pods", "-l", "app=web", "-o", "json", "--", "resolvconf"]),
    "node": (["podtriage-nodes", "podtriage-node-debug", "podtriage-read-namespaces"],
             ["--node", "node", "--", "resolvconf"]),
    "nodes": (["podtriage-nodes", "podtriage-jobs", "podtriage-read-namespaces"],
              ["nodes", "--all", "-o", "json", "--", "resolvconf"]),
}


def _rbac_ns(kube) -> str:
    name = "rb-%s" % secrets.token_hex(2)
    kube.w.namespace(name)
    kube.w.pod("web", name, labels={"app": "web"})
    return name


def _settled(kube, roles, name):
    checks = []
    for role in roles:
        for rule in role["rules"]:
            for res in rule["resources"]:
                resource, _, sub = res.partition("/")
                for verb in rule["verbs"]:
                    attrs = {"verb": verb, "resource": resource, "subresource": sub,
                             "group": rule["apiGroups"][0]}
                    if role["kind"] == "Role":
                        attrs["namespace"] = role["metadata"]["namespace"]
                    if rule.get("resourceNames"):
                        attrs["name"] = rule["resourceNames"][0]
                    checks.append((True, attrs))
    kube.w.settle(checks)


@pytest.mark.parametrize("mode", sorted(MODES))
def test_readme_rbac_is_enough_for_each_mode(kube, mode):
    r = readme_roles()
    names, args = MODES[mode]
    ns = _rbac_ns(kube)
    roles = [_in(r[n], ns) for n in names]
    kube.w.grant(ns, *roles)
    try:
        _settled(kube, roles, ns)
        p = kube.run("-n", ns, *args, user="triager")
        assert p.returncode in (0, 1), p.stderr
        assert "could not read ConfigMap" not in p.stderr
        refused = {(r.verb, r.path) for r in p.requests if r.code == 403}
        assert refused == set(), refused
    finally:
        kube.w.revoke(ns)


@pytest.mark.parametrize("mode", sorted(MODES))
def test_readme_rbac_has_no_spare_rule(kube, mode):
    """Without any one rule of its Roles, the mode fails with a clear message (exit != 0,
    kubectl's Forbidden named) or loses what the rule gave (a ConfigMap, the namespace's
    PodSecurity label: said on stderr)."""
    r = readme_roles()
    names, args = MODES[mode]
    ns = _rbac_ns(kube)
    for name in names:
        for i, rule in enumerate(r[name]["rules"]):
            roles = [_in(_without(r[n], i) if n == name else r[n], ns) for n in names]
            tag = "%s-%d%d" % (ns, names.index(name), i)
            kube.w.grant(tag, *roles)
            try:
                _settled(kube, [x for x in roles if x["rules"]], ns)
                p = kube.run("-n", ns, *args, user="triager")
            finally:
                kube.w.revoke(tag)
            said = p.stderr.lower()
            assert p.returncode != 0 or "forbidden" in said or "cannot read" in said, (
                mode, name, rule, p.stderr)
            assert "forbidden" in said or "no report" in (p.stdout + said), (mode, name, rule, p.stderr)
            assert "Traceback" not in p.stderr


def test_pod_not_running_is_refused_before_any_change(kube, ns):
    kube.w.pod("pending", ns, node="ghost", wait=False, map_it=False)   # no kubelet: Pending
    p = kube.run("pending", "-n", ns, "--", "resolvconf")
    assert p.returncode == 3 and "is Pending, not Running" in p.stderr
    assert not _changes(p)


@pytest.mark.parametrize("kubectl", ["kubectl-nowhere", "/nonexistent/kubectl"])
def test_missing_kubectl_is_could_not_observe(kube, kubectl):
    p = kube.run("web-1", "-n", "shop", "--", "resolvconf", KUBECTL=kubectl)
    assert p.returncode == 3 and "Traceback" not in p.stderr
    assert "kubectl" in p.stderr


def test_pod_labels_survive_and_old_kubectl_without_keep_labels(kube, ns, tmp_path):
    kube.w.pod("web", ns, labels={"app": "web"})
    p = kube.run("web", "-n", ns, "--", "resolvconf")
    assert p.returncode == 0, p.stderr
    assert kube.w.get_pod(ns, "web")["metadata"]["labels"] == {"app": "web"}
    assert not [r for r in p.requests if r.verb == "patch" and r.subresource != "ephemeralcontainers"]
    # a kubectl that predates --keep-labels: the plugin retries without it
    bindir = tmp_path / "old"
    bindir.mkdir()
    (bindir / "kubectl").write_text(
        '#!/bin/sh\nfor a in "$@"; do case "$a" in --keep-labels*) '
        'echo "error: unknown flag: --keep-labels" >&2; exit 1;; esac; done\n'
        'exec %s "$@"\n' % kube.kubectl)
    (bindir / "kubectl").chmod(0o755)
    p = kube.run("web", "-n", ns, "--", "resolvconf", KUBECTL=str(bindir / "kubectl"))
    assert p.returncode == 0, p.stderr
    assert len(_patches(p)) == 1


# ---------------------------------------------------------------- issue 26: --dns-endpoints
def _slice_lists(p):
    return [r for r in p.requests if r.resource == "endpointslices"]


def test_dns_endpoints_come_from_the_real_endpointslice(kube, ns):
    """The real EndpointSlice controller's slice of kube-dns (the CoreDNS pod the kubelet
    stand-in reports Ready) gives conntrack its live endpoints; podtriage in the pod parses
    the flag."""
    slices = kube.w.api.get("/apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices")
    mine = [x for x in slices["items"]
            if x["metadata"]["labels"].get("kubernetes.io/service-name") == "kube-dns"]
    assert [e["addresses"] for x in mine for e in x["endpoints"]] == [[KUBE_DNS_POD]]
    kube.w.pod("web", ns)
    p = kube.run("web", "-n", ns, "--", "conntrack", "-o", "json", PODTRIAGE_PROGRESS="1")
    assert p.returncode in (0, 1), p.stderr
    assert json.loads(p.stdout)["command"] == "conntrack"
    assert kube.w.ephemeral(ns, "web")[-1]["command"] == [
        "podtriage", "conntrack", "--dns-endpoints", KUBE_DNS_POD, "-o", "json"]
    (read,) = _slice_lists(p)
    assert read.verb == "list" and read.code == 200 and read.namespace == "kube-system"
    assert "labelSelector=kubernetes.io%2Fservice-name%3Dkube-dns" in read.uri
    assert "live endpoints of Service kube-system/kube-dns: %s" % KUBE_DNS_POD in p.stderr
    # a Service the cluster does not have: said, and the run goes on without the flag
    p = kube.run("web", "-n", ns, "--dns-service", "openshift-dns/dns-default", "--", "diagnose",
                 "www.example.org", "--port", "80", "-o", "json")
    assert p.returncode in (0, 1, 5), p.stderr
    assert "no EndpointSlice for Service openshift-dns/dns-default" in p.stderr
    assert "--dns-endpoints" not in kube.w.ephemeral(ns, "web")[-1]["command"]
    # a command that does not take it: nothing read
    p = kube.run("web", "-n", ns, "--", "resolvconf", "-o", "json")
    assert _slice_lists(p) == []


def test_dns_endpoints_refused_by_rbac_is_a_note(kube):
    """A user with the pod mode's Roles but no list on endpointslices: the real RBAC's 403
    is one line on stderr, and podtriage runs without --dns-endpoints."""
    r = readme_roles()
    ns = _rbac_ns(kube)
    roles = [_in(r[n], ns) for n in ("podtriage-pods", "podtriage-read-namespaces")]
    kube.w.grant(ns, *roles)
    try:
        _settled(kube, roles, ns)
        kube.w.settle([(False, {"verb": "list", "resource": "endpointslices",
                                "group": "discovery.k8s.io", "namespace": "kube-system"})])
        p = kube.run("-n", ns, "web", "--", "conntrack", "-o", "json", user="triager")
    finally:
        kube.w.revoke(ns)
    assert p.returncode in (0, 1), p.stderr
    assert "cannot read the EndpointSlices of Service kube-system/kube-dns" in p.stderr
    assert "forbidden" in p.stderr and "Traceback" not in p.stderr
    assert [(x.verb, x.code) for x in _slice_lists(p)] == [("list", 403)]
    assert kube.w.ephemeral(ns, "web")[-1]["command"] == ["podtriage", "conntrack", "-o", "json"]
    assert json.loads(p.stdout)["command"] == "conntrack"


def _dns_pod(kube, name: str, ip: str, probe: dict | None) -> None:
    """A pod of the test's DNS Service with its own address (the kubelet stand-in reports it,
    and runs its readinessProbe)."""
    kube.w.lab._kubelet_mapping("node", {"openshift-dns/%s" % name: {"ips": [ip]}})
    c = {"name": "dns", "image": "docker.io/library/debian:bookworm-slim",
         "command": ["sleep", "infinity"], "ports": [{"name": "dns", "containerPort": 53,
                                                      "protocol": "UDP"}]}
    if probe:
        c["readinessProbe"] = probe
    kube.w.api.create({"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"name": name, "namespace": "openshift-dns",
                                    "labels": {"dns.operator.openshift.io/daemonset-dns": "default"}},
                       "spec": {"nodeName": "node", "automountServiceAccountToken": False,
                                "terminationGracePeriodSeconds": 1, "enableServiceLinks": False,
                                "containers": [c]}})


def test_dns_endpoints_of_another_service_keep_only_the_ready(kube, ns):
    """OpenShift's openshift-dns/dns-default, here with two pods: one Ready, one whose
    readinessProbe fails. The real EndpointSlice controller marks the second ready: false;
    only the first becomes --dns-endpoints."""
    kube.w.namespace("openshift-dns")
    kube.w.api.apply({"apiVersion": "v1", "kind": "Service",
                      "metadata": {"name": "dns-default", "namespace": "openshift-dns"},
                      "spec": {"selector": {"dns.operator.openshift.io/daemonset-dns": "default"},
                               "ports": [{"name": "dns", "port": 53, "protocol": "UDP",
                                          "targetPort": "dns"}]}})
    _dns_pod(kube, "dns-ready", "10.244.1.21", None)
    _dns_pod(kube, "dns-unready", "10.244.1.22", {"tcpSocket": {"port": 1}, "timeoutSeconds": 1,
                                                  "periodSeconds": 1, "failureThreshold": 1})

    def both(items):
        eps = {e["addresses"][0]: e["conditions"] for x in items["items"]
               for e in x.get("endpoints") or []}
        return set(eps) == {"10.244.1.21", "10.244.1.22"} and eps["10.244.1.21"].get("ready")

    slices = kube.w.api.wait_for("/apis/discovery.k8s.io/v1/namespaces/openshift-dns/endpointslices",
                                 both, timeout=30)
    conds = {e["addresses"][0]: e["conditions"] for x in slices["items"] for e in x["endpoints"]}
    assert conds["10.244.1.22"]["ready"] is False and conds["10.244.1.21"]["ready"] is True
    kube.w.pod("web", ns)
    p = kube.run("web", "-n", ns, "--dns-service", "openshift-dns/dns-default", "--", "conntrack",
                 "-o", "json")
    assert p.returncode in (0, 1), p.stderr
    assert kube.w.ephemeral(ns, "web")[-1]["command"] == [
        "podtriage", "conntrack", "--dns-endpoints", "10.244.1.21", "-o", "json"]
