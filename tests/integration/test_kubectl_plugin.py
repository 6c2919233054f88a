"""kubectl-podtriage (toolkit.kube) against the real kubectl v1.34 (from PyPI) and the API
stand-in (tests/kube/apiserver.py), which records every request kubectl sends and validates
what it creates against the Kubernetes 1.34 schemas. A kubelet stand-in with a canned runner
plays the containers: no root, no lab (the lab version is tests/integration/test_fleet_lab.py).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.hostile import small_document
from tests.kube.apiserver import ApiServer, schema_errors
from tests.kube.kubectl import KUBECTL_MINOR, client_version, ensure_kubectl
from tests.kube.kubelet import ContainerRun, Kubelet

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / ".venv" / "bin" / "kubectl-podtriage"
SHIM = ROOT / "scripts" / "kubectl-podtriage"


def doc(verdict="bad-answer", **ctx):
    """A diagnose document as a pod prints it; valid against schemas/diagnose.schema.json (the
    plugin, like podtriage merge, uses only documents that match their schema)."""
    d = small_document(verdict=verdict)
    d["context"] = {"pod": None, "namespace": None, "node": None, **ctx}
    return json.dumps(d)


@pytest.fixture(scope="session")
def kubectl_bin():
    return ensure_kubectl()


class Cluster:
    def __init__(self, tmp: Path, kubectl: Path):
        self.api = ApiServer().start()
        self.kubeconfig = self.api.kubeconfig(tmp / "kubeconfig")
        self.tmp = tmp
        self.kubectl = kubectl
        self.exit_code = 0
        self.log = "podtriage diagnose: verdict bad-answer\n"
        self.message = "podtriage diagnose api.corp.example: bad-answer - answers differ"
        self.kubelet = Kubelet(self.api, self.runner).start()
        for ns in ("default", "shop", "kube-system"):
            self.api.add_namespace(ns)
        self.api.add_node("node-1")
        self.api.add_pod("web-1", "shop", node="node-1", labels={"app": "web"},
                         containers=("app", "sidecar"))
        self.api.add_pod("web-1", "default", node="node-1", labels={"app": "web"})

    def runner(self, run: ContainerRun):
        return self.exit_code, self.log.encode(), self.message

    def run(self, *args, plugin=PLUGIN, **env):
        self.api.clear_requests()
        e = {"PATH": "%s:%s:/usr/bin:/bin" % (self.kubectl.parent, PLUGIN.parent),
             "KUBECONFIG": str(self.kubeconfig), "HOME": str(self.tmp),
             "PODTRIAGE_POLL_INTERVAL": "0.05"}
        e.update({k: str(v) for k, v in env.items()})
        return subprocess.run([str(plugin), *args], capture_output=True, text=True, env=e,
                              timeout=60)

    def patches(self):
        return [r for r in self.api.requests if r.method == "PATCH"
                and r.path.endswith("/ephemeralcontainers")]

    def debug_spec(self):
        found = self.patches()
        assert len(found) == 1, [(r.method, r.path) for r in self.api.requests]
        new = [c for c in found[0].body["spec"]["ephemeralContainers"]]
        assert len(new) == 1
        return found[0], new[0]

    def close(self):
        self.kubelet.stop()
        self.api.stop()


@pytest.fixture
def kube(tmp_path, kubectl_bin):
    c = Cluster(tmp_path, kubectl_bin)
    try:
        yield c
    finally:
        c.close()


def _env(spec):
    return {e["name"]: e.get("value") for e in spec.get("env") or []}


def test_real_kubectl_is_v1_34(kubectl_bin):
    assert client_version(kubectl_bin).startswith("v%s." % KUBECTL_MINOR)


def test_pod_mode_targets_first_container_with_netadmin(kube):
    kube.exit_code = 1
    p = kube.run("web-1", "-n", "shop", "--", "diagnose", "api.corp.example", "-o", "json")
    assert p.returncode == 1, p.stderr
    req, spec = kube.debug_spec()
    assert req.path == "/api/v1/namespaces/shop/pods/web-1/ephemeralcontainers"
    assert req.headers["content-type"] == "application/strategic-merge-patch+json"
    assert spec["targetContainerName"] == "app"
    assert spec["securityContext"] == {"capabilities": {"add": ["NET_ADMIN", "NET_RAW"]}}
    assert spec["image"] == "ghcr.io/podtriage/podtriage:0.1"
    assert spec["command"] == ["podtriage", "diagnose", "api.corp.example", "-o", "json"]
    assert spec["name"].startswith("podtriage-")
    assert "stdin" not in spec and "tty" not in spec          # not attached: logs -f instead
    assert _env(spec) == {"PODTRIAGE_POD": "web-1", "PODTRIAGE_NAMESPACE": "shop",
                          "PODTRIAGE_NODE": "node-1"}
    pod = kube.api.store.get("pods", "shop", "web-1")
    assert schema_errors(pod) is None or "status" in schema_errors(pod)
    assert "bad-answer" in p.stdout           # the log passes through
    assert "answers differ" in p.stderr       # the termination message is shown
    logs = [r for r in kube.api.requests if r.path.endswith("/log")]
    assert logs and logs[0].query["follow"] == ["true"]
    assert logs[0].query["container"] == [spec["name"]]


def test_explicit_container_image_and_exit_code_from_status(kube):
    kube.exit_code = 3
    p = kube.run("web-1", "-n", "shop", "-c", "sidecar", "--image", "localhost/podtriage:dev",
                 "--", "diagnose", "x")
    assert p.returncode == 3
    _, spec = kube.debug_spec()
    assert spec["targetContainerName"] == "sidecar"
    assert spec["image"] == "localhost/podtriage:dev"


def test_unknown_container_is_could_not_observe(kube):
    p = kube.run("web-1", "-n", "shop", "-c", "nope", "--", "diagnose", "x")
    assert p.returncode == 3 and "no container nope" in p.stderr
    assert not kube.patches()


def test_image_from_environment_and_context_namespace(kube):
    p = kube.run("web-1", "--", "diagnose", "x", PODTRIAGE_IMAGE="reg.example/pt:1")
    assert p.returncode == 0, p.stderr
    req, spec = kube.debug_spec()
    assert spec["image"] == "reg.example/pt:1"
    assert req.path.startswith("/api/v1/namespaces/default/")   # the context's namespace


def test_image_that_cannot_be_pulled_fails_fast(kube):
    def waiting(run):
        kube.kubelet._set_status(run.namespace, run.pod, run.name, True, {"waiting": {
            "reason": "ErrImagePull", "message": "pull access denied"}})
        import time
        time.sleep(5)
        return 0, b"", ""
    kube.kubelet.runner = waiting
    p = kube.run("web-1", "-n", "shop", "--image", "nope:1", "--", "diagnose", "x")
    assert p.returncode == 3
    assert "ErrImagePull" in p.stderr and "pull access denied" in p.stderr


def test_node_mode_runs_one_job_and_deletes_it(kube):
    p = kube.run("--node", "node-1", "-n", "default")
    assert p.returncode == 0, p.stderr
    creates = [r for r in kube.api.requests if r.method == "POST"]
    assert len(creates) == 1 and creates[0].path == "/apis/batch/v1/namespaces/default/jobs"
    job = creates[0].body
    assert creates[0].query.get("fieldValidation") == ["Strict"]
    tmpl = job["spec"]["template"]["spec"]
    assert tmpl["nodeName"] == "node-1" and tmpl["hostNetwork"] is True
    assert tmpl["containers"][0]["args"] == ["conntrack"]
    assert job["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "podtriage"
    deletes = [r for r in kube.api.requests if r.method == "DELETE"]
    assert deletes and "jobs" in deletes[0].path or kube.api.store.list("jobs") == []
    assert kube.api.store.list("jobs") == []
    kube.exit_code = 1
    p = kube.run("--node", "node-1", "--", "conntrack", "race-test", "169.254.25.10")
    assert p.returncode == 1
    job = [r for r in kube.api.requests if r.method == "POST"][0].body
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == [
        "conntrack", "race-test", "169.254.25.10"]


def test_corefiles_travel_as_env_and_reach_diagnose(kube):
    for cm in ("nodelocaldns", "coredns"):
        kube.api.add_configmap(cm, "kube-system", {"Corefile": ".:53 {\n    forward . 10.0.0.1\n}\n"})
    kube.exit_code = 1
    p = kube.run("web-1", "-n", "shop", "--corefiles", "--", "diagnose", "api.corp.example")
    assert p.returncode == 1, p.stderr
    gets = [r.path for r in kube.api.requests if "/configmaps/" in r.path]
    # every name the distributions ship, in this order; the absent ones are skipped
    assert gets == ["/api/v1/namespaces/kube-system/configmaps/nodelocaldns",
                    "/api/v1/namespaces/kube-system/configmaps/node-local-dns",
                    "/api/v1/namespaces/kube-system/configmaps/coredns",
                    "/api/v1/namespaces/kube-system/configmaps/coredns-custom"]
    _, spec = kube.debug_spec()
    envs = _env(spec)
    assert {"PODTRIAGE_CM_NODELOCALDNS", "PODTRIAGE_CM_COREDNS"} <= set(envs)
    assert "name: nodelocaldns" in envs["PODTRIAGE_CM_NODELOCALDNS"]
    cmd = spec["command"]
    assert cmd[:2] == ["bash", "-c"]
    assert cmd[3:] == ["podtriage", "diagnose", "api.corp.example"]
    # the script, run by a real bash, hands podtriage two readable --corefile paths
    check = subprocess.run(
        ["bash", "-c", cmd[2].replace("exec podtriage", "exec python3 -c \"import sys;a=sys.argv[1:];"
                                      "print([open(a[i+1]).read() for i in range(len(a)) if a[i]=='--corefile'])\""),
         *cmd[3:]], capture_output=True, text=True, env={**os.environ, **envs}, timeout=10)
    assert check.returncode == 0, check.stderr
    assert "name: nodelocaldns" in check.stdout and "name: coredns" in check.stdout


def test_corefiles_missing_configmap_is_skipped(kube):
    kube.api.add_configmap("coredns", "kube-system", {"Corefile": ".:53 {}\n"})
    p = kube.run("web-1", "-n", "shop", "--corefiles", "--", "diagnose", "x")
    assert p.returncode == 0
    assert "no ConfigMap kube-system/nodelocaldns" in p.stderr
    _, spec = kube.debug_spec()
    assert [k for k in _env(spec) if k.startswith("PODTRIAGE_CM_")] == ["PODTRIAGE_CM_COREDNS"]


def test_pod_not_found_is_could_not_observe(kube):
    p = kube.run("nope", "-n", "shop", "--", "diagnose", "x")
    assert p.returncode == 3 and "cannot read pod nope" in p.stderr
    assert not kube.patches()


def test_context_and_kubeconfig_passed_to_every_call(kube, tmp_path):
    other = tmp_path / "other-kubeconfig"
    cfg = yaml.safe_load(kube.kubeconfig.read_text())
    cfg["contexts"].append({"name": "prod", "context": {"cluster": "standin", "user": "tester",
                                                          "namespace": "shop"}})
    other.write_text(yaml.safe_dump(cfg))
    p = kube.run("web-1", "--context", "prod", "--kubeconfig", str(other), "--", "diagnose", "x",
                 KUBECONFIG="/nonexistent")
    assert p.returncode == 0, p.stderr
    req, _ = kube.debug_spec()
    assert req.path.startswith("/api/v1/namespaces/shop/")     # prod's namespace: flags applied


def test_runbook_runs_the_image_copy(kube):
    kube.exit_code = 1
    p = kube.run("web-1", "-n", "shop", "--runbook", "service-unreachable", "--",
                 "api.corp.example", "443")
    assert p.returncode == 1, p.stderr
    _, spec = kube.debug_spec()
    assert spec["securityContext"]["capabilities"]["add"] == ["NET_ADMIN", "NET_RAW"]
    assert spec["command"] == ["bash", "/opt/podtriage/runbooks/service-unreachable.sh",
                               "api.corp.example", "443"]


@pytest.mark.parametrize("level,profile,sc", [
    ("baseline", "baseline", None),
    ("restricted", "restricted", {"allowPrivilegeEscalation": False,
                                  "capabilities": {"drop": ["ALL"]}, "runAsNonRoot": True,
                                  "seccompProfile": {"type": "RuntimeDefault"}}),
])
def test_podsecurity_picks_a_profile_the_namespace_admits(kube, level, profile, sc):
    kube.api.add_namespace("secure", {"pod-security.kubernetes.io/enforce": level})
    kube.api.add_pod("web-9", "secure", node="node-1")
    p = kube.run("web-9", "-n", "secure", "--", "diagnose", "x")
    assert p.returncode == 0, p.stderr
    assert "enforces PodSecurity %s" % level in p.stderr and "degraded" in p.stderr
    _, spec = kube.debug_spec()
    assert spec.get("securityContext") == sc
    assert "NET_RAW" not in json.dumps(spec)


def test_ephemeral_spec_is_valid_for_kubernetes_1_34(kube):
    p = kube.run("web-1", "-n", "shop", "--", "diagnose", "x")
    assert p.returncode == 0, p.stderr
    pod = dict(kube.api.store.get("pods", "shop", "web-1"))
    pod.pop("status")
    assert schema_errors(pod) is None


@pytest.mark.parametrize("args", [
    [],                                          # no pod
    ["web-1"],                                   # no podtriage arguments
    ["web-1", "--bogus", "--", "diagnose", "x"],
    ["web-1", "web-2", "--", "diagnose", "x"],
    ["web-1", "-n"],
    ["--node", "w", "web-1"],
    ["--node", "w", "-c", "app"],
    ["web-1", "--corefiles", "--", "resolve", "x"],
    ["web-1", "--runbook", "rm-rf"],
    ["--node", "w", "--runbook", "dns-slow"],
    ["pods", "--", "diagnose", "x"],             # no selector
    ["pods", "-l", "app=web", "-n", "a", "-A", "--", "diagnose", "x"],
    ["pods", "-l", "app=web"],
    ["pods", "-l", "app=web", "--max", "lots", "--", "diagnose", "x"],
    ["nodes"],                                   # none of --node, -l, --all
    ["nodes", "--all", "-l", "a=b"],
    ["web-1", "--profile", "sudo", "--", "diagnose", "x"],
    ["web-1", "-o", "yaml", "--", "diagnose", "x"],
])
def test_bad_usage_exits_2_with_usage(kube, args):
    p = kube.run(*args)
    assert p.returncode == 2, (args, p.stderr)
    assert "Usage:" in p.stderr and "Traceback" not in p.stderr
    assert not kube.patches()


def test_help_and_kubectl_finds_the_plugin(kube):
    p = kube.run("--help")
    assert p.returncode == 0 and "Usage:" in p.stdout and "--profile=netadmin" in p.stdout
    e = {"PATH": "%s:%s:/usr/bin:/bin" % (kube.kubectl.parent, PLUGIN.parent),
         "KUBECONFIG": str(kube.kubeconfig), "HOME": str(kube.tmp)}
    p = subprocess.run([str(kube.kubectl), "podtriage", "--help"], capture_output=True,
                       text=True, env=e, timeout=30)
    assert p.returncode == 0 and "Usage:" in p.stdout, p.stderr
    p = subprocess.run([str(kube.kubectl), "plugin", "list"], capture_output=True, text=True,
                       env=e, timeout=30)
    assert "kubectl-podtriage" in p.stdout


def test_old_script_is_a_shim_to_the_console_script(kube):
    p = kube.run("web-1", "-n", "shop", "--", "diagnose", "x", plugin=SHIM)
    assert p.returncode == 0, p.stderr
    kube.debug_spec()
    assert subprocess.run(["bash", "-n", str(SHIM)]).returncode == 0
    import shutil

    if shutil.which("shellcheck"):
        sc = subprocess.run(["shellcheck", "-S", "warning", str(SHIM)], capture_output=True,
                            text=True)
        assert sc.returncode == 0, sc.stdout


# ---------------------------------------------------------------- fleets
def test_pods_fleet_merges_every_pod(kube):
    kube.api.add_node("node-2")
    for i, node in enumerate(("node-1", "node-1", "node-2")):
        kube.api.add_pod("api-%d" % i, "shop", node=node, labels={"app": "api"})
    kube.api.add_pod("other", "shop", node="node-2", labels={"app": "db"})

    def runner(run):
        verdict = "bad-answer" if run.node == "node-2" else "ok"
        env = {e["name"]: e["value"] for e in run.spec["env"]}
        return (1 if verdict != "ok" else 0,
                (doc(verdict, pod=env["PODTRIAGE_POD"], namespace=env["PODTRIAGE_NAMESPACE"],
                     node=env["PODTRIAGE_NODE"]) + "\n").encode(), "")
    kube.kubelet.runner = runner
    p = kube.run("pods", "-l", "app=api", "-n", "shop", "-o", "json", "--parallel", "2", "--",
                 "diagnose", "x", "--port", "80")
    assert p.returncode == 1, p.stderr
    d = json.loads(p.stdout)
    assert d["reports"] == 3 and d["verdicts"] == {"bad-answer": 1, "ok": 2}
    assert any(f["code"] == "node-differs" and f["data"]["node"] == "node-2"
               for f in d["findings"])
    specs = [r.body["spec"]["ephemeralContainers"][-1] for r in kube.patches()]
    assert len(specs) == 3
    assert all(s["command"] == ["podtriage", "diagnose", "x", "--port", "80", "-o", "json"]
               for s in specs)
    lists = [r for r in kube.api.requests if r.method == "GET" and r.path == "/api/v1/namespaces/shop/pods"]
    assert lists[0].query["labelSelector"] == ["app=api"]


def test_pods_fleet_above_max_asks_for_yes(kube):
    for i in range(3):
        kube.api.add_pod("api-%d" % i, "shop", node="node-1", labels={"app": "api"})
    p = kube.run("pods", "-l", "app=api", "-n", "shop", "--max", "2", "--", "diagnose", "x")
    assert p.returncode == 2
    assert "cannot be removed" in p.stderr and "--yes" in p.stderr
    assert not kube.patches()
    kube.log = doc("ok") + "\n"
    p = kube.run("pods", "-l", "app=api", "-A", "--max", "2", "--yes", "-o", "json", "--",
                 "diagnose", "x")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["reports"] == 3
    assert len(kube.patches()) == 3


def test_nodes_fleet_one_job_per_node_merged_and_cleaned_up(kube):
    kube.api.add_node("node-2", taints=[{"key": "node-role.kubernetes.io/control-plane",
                                          "effect": "NoSchedule"}])

    def runner(run):
        env = {e["name"]: e.get("value") for e in run.spec["env"]}
        assert run.pod_spec["hostNetwork"] is True
        return 0, (doc("ok", node=env["PODTRIAGE_NODE"]) + "\n").encode(), ""
    kube.kubelet.runner = runner
    p = kube.run("nodes", "--all", "-n", "default", "-o", "json")
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert d["reports"] == 2 and d["nodes"] == ["node-1", "node-2"]
    posts = [r for r in kube.api.requests if r.method == "POST"]
    assert len(posts) == 2
    for r in posts:
        job = r.body
        assert schema_errors(job) is None
        t = job["spec"]["template"]["spec"]
        c = t["containers"][0]
        assert c["args"] == ["conntrack", "-o", "json"]
        assert t["tolerations"] == [{"operator": "Exists"}]
        assert t["securityContext"]["runAsUser"] == 65532 and t["securityContext"]["runAsNonRoot"]
        assert set(c["securityContext"]["capabilities"]["add"]) == {"NET_ADMIN", "NET_RAW"}
        assert job["spec"]["activeDeadlineSeconds"] > 0 and job["spec"]["ttlSecondsAfterFinished"] > 0
    deletes = [r for r in kube.api.requests if r.method == "DELETE"]
    assert deletes and kube.api.store.list("jobs") == []
    assert [p for p in kube.api.store.list("pods") if "podtriage" in p["metadata"]["name"]] == []


def test_nodes_refused_in_a_baseline_namespace(kube):
    kube.api.add_namespace("secure", {"pod-security.kubernetes.io/enforce": "baseline"})
    p = kube.run("nodes", "--all", "-n", "secure")
    assert p.returncode == 3 and "refuses hostNetwork" in p.stderr
    assert not [r for r in kube.api.requests if r.method == "POST"]


def test_dry_run_prints_valid_manifests_without_the_cluster(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "KUBECONFIG": "/nonexistent"}
    p = subprocess.run([str(PLUGIN), "nodes", "--node", "worker-1", "--node", "w" * 80,
                        "--dry-run", "--image", "reg.example/pt:1"],
                       capture_output=True, text=True, env=env, timeout=30)
    assert p.returncode == 0, p.stderr
    jobs = list(yaml.safe_load_all(p.stdout))
    assert len(jobs) == 2 and all(schema_errors(j) is None for j in jobs)
    assert all(len(j["metadata"]["name"]) <= 63 for j in jobs)
    p = subprocess.run([str(PLUGIN), "pods", "-l", "app=web", "--dry-run", "--", "diagnose", "x"],
                       capture_output=True, text=True, env=env, timeout=30)
    assert p.returncode == 0, p.stderr
    eph = yaml.safe_load(p.stdout)["ephemeralContainers"][0]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "app", "image": "x"}], "ephemeralContainers": [eph]}}
    assert schema_errors(pod) is None
    assert eph["securityContext"]["capabilities"]["add"] == ["NET_ADMIN", "NET_RAW"]


def test_forced_netadmin_in_a_baseline_namespace_is_refused_by_admission(kube):
    kube.api.add_namespace("secure", {"pod-security.kubernetes.io/enforce": "baseline"})
    kube.api.add_pod("web-9", "secure", node="node-1")
    for profile in ("netadmin", "general"):          # general adds SYS_PTRACE: baseline says no
        p = kube.run("web-9", "-n", "secure", "--profile", profile, "--", "diagnose", "x")
        assert p.returncode == 3, p.stderr
        assert "violates PodSecurity" in p.stderr


def _slow_runner(seconds):
    import time

    def run(r):
        time.sleep(seconds)
        return 0, (doc("ok", node=r.node) + "\n").encode(), ""
    return run


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_nodes_interrupted_deletes_its_jobs(kube, sig):
    import signal
    import time

    kube.api.add_node("node-2")
    kube.kubelet.runner = _slow_runner(20)
    e = {"PATH": "%s:%s:/usr/bin:/bin" % (kube.kubectl.parent, PLUGIN.parent),
         "KUBECONFIG": str(kube.kubeconfig), "HOME": str(kube.tmp),
         "PODTRIAGE_POLL_INTERVAL": "0.05"}
    proc = subprocess.Popen([str(PLUGIN), "nodes", "--all", "-n", "default"], env=e,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while len(kube.api.store.list("jobs")) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(kube.api.store.list("jobs")) == 2
        t0 = time.monotonic()
        proc.send_signal(getattr(signal, sig))
        out, err = proc.communicate(timeout=45)
        # the Jobs' pods would run 20 s more: the plugin does not wait for them (one
        # kubectl delete, a few seconds on a loaded 2-core machine)
        assert time.monotonic() - t0 < 18, err
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "deleting this run's Jobs" in err
    assert kube.api.store.list("jobs") == []
    assert [r for r in kube.api.requests if r.method == "DELETE"]


def test_pods_fleet_one_deadline_for_all(kube):
    import time

    for i in range(2):
        kube.api.add_pod("api-%d" % i, "shop", node="node-1", labels={"app": "api"})
    fast = _slow_runner(0)
    slow = _slow_runner(30)
    kube.kubelet.runner = lambda r: (slow if r.pod == "api-1" else fast)(r)
    t0 = time.monotonic()
    p = kube.run("pods", "-l", "app=api", "-n", "shop", "--timeout", "6", "-o", "json", "--",
                 "diagnose", "x")
    took = time.monotonic() - t0
    assert took < 20, took
    d = json.loads(p.stdout)
    assert d["reports"] == 1 and d["verdict"] == "indeterminate", (d.get("unusable"), d.get("missing"), p.stderr[-1500:])
    assert d["missing"][0]["where"] == "pod shop/api-1"
    assert p.returncode == 5           # indeterminate: could not tell (README "Exit codes")


def test_standin_refuses_what_a_1_34_server_refuses(kube):
    """The stand-in's strict validation is real: kubectl create of a Job with an unknown
    field is refused with 422, as fieldValidation=Strict makes a real server do."""
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "bad"},
           "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [
               {"name": "a", "image": "x", "capabilites": {}}]}}}}
    e = {"PATH": "/usr/bin:/bin", "KUBECONFIG": str(kube.kubeconfig), "HOME": str(kube.tmp)}
    p = subprocess.run([str(kube.kubectl), "create", "-f", "-"], input=json.dumps(job),
                       capture_output=True, text=True, env=e, timeout=30)
    assert p.returncode == 1 and "capabilites" in p.stderr
    assert kube.api.store.list("jobs") == []


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


def _without(role: dict, i: int) -> dict:
    out = json.loads(json.dumps(role))
    del out["rules"][i]
    return out


def test_readme_rbac_is_enough_for_pod_mode_fleets_and_corefiles(kube):
    r = readme_roles()
    kube.api.add_namespace("podtriage")
    kube.api.grant(r["podtriage-pods"], r["podtriage-read-namespaces"], r["podtriage-corefiles"])
    kube.api.add_configmap("coredns", "kube-system", {"Corefile": ".:53 {}\n"})
    kube.api.add_configmap("nodelocaldns", "kube-system", {"Corefile": ".:53 {}\n"})
    kube.log = doc("ok") + "\n"
    p = kube.run("web-1", "-n", "shop", "--corefiles", "--", "diagnose", "x")
    assert p.returncode == 0, p.stderr
    assert "could not read ConfigMap" not in p.stderr  # RBAC lets it read what exists
    assert "no ConfigMap kube-system/coredns " not in p.stderr
    p = kube.run("pods", "-l", "app=web", "-n", "shop", "-o", "json", "--", "diagnose", "x")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["reports"] == 1
    assert not [q for q in kube.api.requests if q.status == 403]


def test_readme_rbac_is_enough_for_node_jobs(kube):
    r = readme_roles()
    kube.api.add_namespace("podtriage")
    kube.api.grant(r["podtriage-nodes"], r["podtriage-jobs"])
    kube.log = doc("ok") + "\n"
    p = kube.run("nodes", "--all", "-n", "podtriage", "-o", "json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["reports"] == 1
    assert kube.api.store.list("jobs") == []
    # only the optional namespace read (PodSecurity label) was refused
    assert {q.path for q in kube.api.requests if q.status == 403} == {"/api/v1/namespaces/podtriage"}


@pytest.mark.parametrize("role,args", [
    ("podtriage-pods", ["pods", "-l", "app=web", "-n", "shop", "--", "diagnose", "x"]),
    ("podtriage-jobs", ["nodes", "--all", "-n", "podtriage"]),
    ("podtriage-nodes", ["nodes", "--all", "-n", "podtriage"]),
])
def test_readme_rbac_has_no_spare_rule(kube, role, args):
    r = readme_roles()
    kube.api.add_namespace("podtriage")
    kube.log = doc("ok") + "\n"
    others = {"podtriage-pods": ["podtriage-read-namespaces"],
              "podtriage-jobs": ["podtriage-nodes"],
              "podtriage-nodes": ["podtriage-jobs"]}[role]
    for i in range(len(r[role]["rules"])):
        kube.api.grant(_without(r[role], i), *(r[o] for o in others))
        p = kube.run(*args)
        assert p.returncode != 0, (role, r[role]["rules"][i], p.stderr)
        assert "forbidden" in p.stderr.lower() or "no report" in p.stdout + p.stderr, p.stderr


def test_pod_not_running_is_refused_before_any_change(kube):
    pod = kube.api.store.get("pods", "shop", "web-1")
    pod["status"]["phase"] = "Failed"
    kube.api.store.put("pods", pod)
    p = kube.run("web-1", "-n", "shop", "--", "diagnose", "x")
    assert p.returncode == 3 and "is Failed, not Running" in p.stderr
    assert not kube.patches()


@pytest.mark.parametrize("kubectl", ["kubectl-nowhere", "/nonexistent/kubectl"])
def test_missing_kubectl_is_could_not_observe(kube, kubectl):
    p = kube.run("web-1", "--", "diagnose", "x", KUBECTL=kubectl)
    assert p.returncode == 3 and "Traceback" not in p.stderr
    assert "kubectl" in p.stderr


def test_pod_labels_survive_and_old_kubectl_without_keep_labels(kube, tmp_path):
    p = kube.run("web-1", "-n", "shop", "--", "diagnose", "x")
    assert p.returncode == 0, p.stderr
    assert kube.api.store.get("pods", "shop", "web-1")["metadata"]["labels"] == {"app": "web"}
    assert not [r for r in kube.api.requests if r.method == "PATCH"
                and not r.path.endswith("/ephemeralcontainers")]
    # a kubectl that predates --keep-labels: the plugin retries without it
    bindir = tmp_path / "old"
    bindir.mkdir()
    (bindir / "kubectl").write_text(
        '#!/bin/sh\nfor a in "$@"; do case "$a" in --keep-labels*) '
        'echo "error: unknown flag: --keep-labels" >&2; exit 1;; esac; done\n'
        'exec %s "$@"\n' % kube.kubectl)
    (bindir / "kubectl").chmod(0o755)
    p = kube.run("web-1", "-n", "shop", "--", "diagnose", "x",
                 PATH="%s:%s:/usr/bin:/bin" % (bindir, PLUGIN.parent))
    assert p.returncode == 0, p.stderr
    assert len(kube.patches()) == 1
