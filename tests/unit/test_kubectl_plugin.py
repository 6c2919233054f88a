"""scripts/kubectl-podtriage against a fake `kubectl` on PATH that records every argv it got
(one JSON array per line) and prints canned output."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "scripts" / "kubectl-podtriage"

FAKE_KUBECTL = r'''#!/usr/bin/env python3
import json, os, sys
args = sys.argv[1:]
with open(os.environ["FAKE_LOG"], "a") as fh:
    fh.write(json.dumps(args) + "\n")
joined = " ".join(args)
if "get" in args and "pod" in args and "{.spec.containers[0].name}" in joined:
    if os.environ.get("FAKE_NO_POD"):
        print('Error from server (NotFound): pods "x" not found', file=sys.stderr); sys.exit(1)
    print("app", end="")
elif "get" in args and "cm" in args:
    name = args[args.index("cm") + 1]
    if name in os.environ.get("FAKE_MISSING_CM", "").split(","):
        print(f'Error from server (NotFound): configmaps "{name}" not found', file=sys.stderr); sys.exit(1)
    print(f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  Corefile: |\n    .:53 {{\n        forward . 10.0.0.1\n    }}")
elif "get" in args and "exitCode}" in joined:
    print(os.environ.get("FAKE_EXIT_CODE", ""), end="")
elif "get" in args and "message}" in joined:
    print("podtriage diagnose api.corp.example: bad-answer - answers differ", end="")
elif args and args[0] == "debug":
    print("podtriage: verdict bad-answer")
    sys.exit(int(os.environ.get("FAKE_DEBUG_RC", "0")))
'''


@pytest.fixture
def kube(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "kubectl"
    fake.write_text(FAKE_KUBECTL)
    fake.chmod(0o755)
    log = tmp_path / "kubectl.log"

    def run(*args, **env):
        e = {"PATH": f"{bindir}:{os.environ['PATH']}", "FAKE_LOG": str(log),
             "PODTRIAGE_POLL_INTERVAL": "0", "HOME": str(tmp_path)}
        e.update({k: str(v) for k, v in env.items()})
        p = subprocess.run(["bash", str(PLUGIN), *args], capture_output=True, text=True,
                           env=e, timeout=30)
        calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
        log.unlink(missing_ok=True)
        return p, calls

    return run


def _debug(calls):
    found = [c for c in calls if c and c[0] == "debug"]
    assert len(found) == 1, calls
    return found[0]


def _opt(call, name):
    vals = [a.split("=", 1)[1] for a in call if a.startswith(name + "=")]
    return vals[0] if len(vals) == 1 else vals


def test_pod_mode_targets_first_container_with_netadmin(kube):
    p, calls = kube("web-1", "-n", "shop", "--", "diagnose", "api.corp.example", "-o", "json",
                    FAKE_EXIT_CODE=1)
    assert p.returncode == 1, p.stderr
    assert calls[0][:3] == ["get", "pod", "web-1"] and "shop" in calls[0]
    d = _debug(calls)
    assert d[1] == "web-1"
    assert d[d.index("-n") + 1] == "shop"
    assert _opt(d, "--target") == "app"
    assert _opt(d, "--profile") == "netadmin"
    assert _opt(d, "--image") == "ghcr.io/podtriage/podtriage:0.1"
    assert {"-i", "--attach", "--quiet"} <= set(d)
    assert d[d.index("--") + 1:] == ["podtriage", "diagnose", "api.corp.example", "-o", "json"]
    assert _opt(d, "--container").startswith("podtriage-")
    assert "bad-answer" in p.stdout           # the attached output passes through
    assert "bad-answer" in p.stderr           # the termination message is shown


def test_explicit_container_image_and_exit_code_from_status(kube):
    p, calls = kube("web-1", "-c", "sidecar", "--image", "localhost/podtriage:dev", "--",
                    "diagnose", "x", FAKE_DEBUG_RC=0, FAKE_EXIT_CODE=3)
    assert p.returncode == 3                  # the pod status wins over kubectl's 0
    assert not any(c[:2] == ["get", "pod"] and "{.spec.containers[0].name}" in " ".join(c)
                   for c in calls)
    d = _debug(calls)
    assert _opt(d, "--target") == "sidecar"
    assert _opt(d, "--image") == "localhost/podtriage:dev"
    assert "-n" not in d
    name = _opt(d, "--container")
    status = [c for c in calls if c[:2] == ["get", "pod"] and "exitCode}" in " ".join(c)]
    assert status and f'@.name=="{name}"' in " ".join(status[0])


def test_exit_code_falls_back_to_kubectl(kube):
    p, calls = kube("web-1", "--", "resolve", "x", FAKE_DEBUG_RC=1, FAKE_EXIT_CODE="")
    assert p.returncode == 1
    assert "could not read the exit code" in p.stderr


def test_image_from_environment(kube):
    p, calls = kube("web-1", "--", "diagnose", "x", PODTRIAGE_IMAGE="reg.example/pt:1",
                    FAKE_EXIT_CODE=0)
    assert p.returncode == 0
    assert _opt(_debug(calls), "--image") == "reg.example/pt:1"


def test_node_mode(kube):
    p, calls = kube("--node", "worker-3", FAKE_DEBUG_RC=0)
    assert p.returncode == 0, p.stderr
    d = _debug(calls)
    assert d[1] == "node/worker-3"
    assert _opt(d, "--profile") == "sysadmin"
    assert "--target" not in " ".join(d)
    assert d[d.index("--") + 1:] == ["podtriage", "conntrack"]
    p, calls = kube("--node", "worker-3", "--", "conntrack", "race-test", "169.254.25.10",
                    FAKE_DEBUG_RC=1)
    assert p.returncode == 1
    d = _debug(calls)
    assert d[d.index("--") + 1:] == ["podtriage", "conntrack", "race-test", "169.254.25.10"]


def test_corefiles_travel_as_env_and_reach_diagnose(kube):
    p, calls = kube("web-1", "-n", "shop", "--corefiles", "--", "diagnose", "api.corp.example",
                    FAKE_EXIT_CODE=1)
    assert p.returncode == 1, p.stderr
    cms = [c for c in calls if "cm" in c]
    assert [c[c.index("cm") + 1] for c in cms] == ["nodelocaldns", "coredns"]
    assert all(c[c.index("-n") + 1] == "kube-system" and "yaml" in c for c in cms)
    d = _debug(calls)
    envs = dict(a.split("=", 2)[1:] for a in d if a.startswith("--env="))
    assert set(envs) == {"PODTRIAGE_CM_NODELOCALDNS", "PODTRIAGE_CM_COREDNS"}
    assert "name: nodelocaldns" in envs["PODTRIAGE_CM_NODELOCALDNS"]
    cmd = d[d.index("--") + 1:]
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
    p, calls = kube("web-1", "--corefiles", "--", "diagnose", "x", FAKE_MISSING_CM="nodelocaldns",
                    FAKE_EXIT_CODE=0)
    assert p.returncode == 0
    assert "no ConfigMap kube-system/nodelocaldns" in p.stderr
    envs = [a for a in _debug(calls) if a.startswith("--env=")]
    assert len(envs) == 1 and envs[0].startswith("--env=PODTRIAGE_CM_COREDNS=")


def test_pod_not_found_is_could_not_observe(kube):
    p, calls = kube("nope", "--", "diagnose", "x", FAKE_NO_POD=1)
    assert p.returncode == 3
    assert not [c for c in calls if c[0] == "debug"]


def test_context_flags_passed_to_every_call(kube):
    p, calls = kube("web-1", "--context", "prod", "--", "diagnose", "x", FAKE_EXIT_CODE=0)
    assert p.returncode == 0
    assert calls and all("--context=prod" in c for c in calls)


def test_runbook_runs_the_image_copy(kube):
    p, calls = kube("web-1", "--runbook", "service-unreachable", "--", "api.corp.example", "443",
                    FAKE_EXIT_CODE=1)
    assert p.returncode == 1, p.stderr
    d = _debug(calls)
    assert _opt(d, "--profile") == "netadmin"
    assert d[d.index("--") + 1:] == ["bash", "/opt/podtriage/runbooks/service-unreachable.sh",
                                     "api.corp.example", "443"]


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
])
def test_bad_usage_exits_2_with_usage(kube, args):
    p, calls = kube(*args)
    assert p.returncode == 2, (args, p.stderr)
    assert "Usage:" in p.stderr
    assert not [c for c in calls if c and c[0] == "debug"]


def test_help(kube):
    p, _ = kube("--help")
    assert p.returncode == 0 and "Usage:" in p.stdout and "--profile=netadmin" in p.stdout


def test_shell_syntax_and_shellcheck():
    assert subprocess.run(["bash", "-n", str(PLUGIN)]).returncode == 0
    if shutil.which("shellcheck"):
        p = subprocess.run(["shellcheck", "-S", "warning", str(PLUGIN)], capture_output=True, text=True)
        assert p.returncode == 0, p.stdout
