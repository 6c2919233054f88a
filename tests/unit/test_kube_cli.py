"""kubectl-podtriage's command line (issue 25 items 1-4) with a fake kubectl that records its
argv (tests/kube/fakekubectl.py): no cluster is needed to see what the plugin asks kubectl,
and that it asks nothing when the command line is wrong. The same behaviours against the lab's
real kube-apiserver: tests/integration/test_kubectl_plugin.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from toolkit.kube.argv import Usage, parse
from toolkit.kube.precheck import Help, check_podtriage_args

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / ".venv" / "bin" / "kubectl-podtriage"
COMPLETE = ROOT / ".venv" / "bin" / "kubectl_complete-podtriage"
FAKE = ROOT / "tests" / "kube" / "fakekubectl.py"


def pod(name="web-1", containers=("app", "sidecar"), annotations=None):
    md = {"name": name, "namespace": "shop", "annotations": annotations or {}}
    return {"metadata": md, "spec": {"nodeName": "node-1",
                                     "containers": [{"name": c} for c in containers]},
            "status": {"phase": "Running"}}


def verb(argv):
    return next((a for a in argv if not a.startswith("-")), "")


class Fake:
    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.log = tmp / "calls.jsonl"
        self.scenario = tmp / "scenario.json"
        self.set(pod=pod(), log='{"verdict": "ok"}\n')

    def set(self, **sc):
        self.scenario.write_text(json.dumps(sc))

    def calls(self):
        if not self.log.exists():
            return []
        return [json.loads(line)["argv"] for line in self.log.read_text().splitlines()]

    def env(self, **extra):
        e = {"PATH": "%s:/usr/bin:/bin" % PLUGIN.parent, "HOME": str(self.tmp),
             "KUBECTL": str(FAKE), "FAKE_LOG": str(self.log), "FAKE_SCENARIO": str(self.scenario),
             "PODTRIAGE_POLL_INTERVAL": "0", "LANG": "C.UTF-8"}
        e.update(extra)
        return e

    def run(self, *args, program=PLUGIN, **extra):
        return subprocess.run([str(program), *args], capture_output=True, text=True,
                              env=self.env(**extra), timeout=60)


@pytest.fixture
def fake(tmp_path):
    return Fake(tmp_path)


# ---------------------------------------------------------------- kubectl's conventions
@pytest.mark.parametrize("argv,namespace", [
    (["web", "-n", "shop"], "shop"), (["web", "-nshop"], "shop"), (["web", "-n=shop"], "shop"),
    (["web", "--namespace=shop"], "shop"), (["web", "--namespace", "shop"], "shop"),
    (["-qnshop", "web"], "shop"),
])
def test_namespace_spellings(argv, namespace):
    p = parse([*argv, "--", "diagnose", "x"])
    assert p.values["namespace"] == namespace and p.positional == ("web",)
    assert p.args == ("diagnose", "x")


def test_output_selector_and_chained_booleans():
    p = parse(["pods", "-lapp=web", "-ojson", "-Aqy", "--", "diagnose", "x"])
    assert p.values == {"selector": "app=web", "output": "json"}
    assert {"all_namespaces", "quiet", "yes"} <= p.flags


def test_kubectl_global_flags_are_collected():
    p = parse(["web", "--as", "jane", "--as-group=ops", "--as-group", "sre", "--user=u",
               "--cluster", "c", "--request-timeout=5s", "-s", "https://x:6443", "-v6",
               "--insecure-skip-tls-verify", "--token=t", "--", "diagnose", "x"])
    assert p.kflags == ("--as=jane", "--as-group=ops", "--as-group=sre", "--user=u",
                        "--cluster=c", "--request-timeout=5s", "--server=https://x:6443",
                        "--v=6", "--insecure-skip-tls-verify", "--token=t")


def test_node_slash_name_is_node_mode():
    assert parse(["node/worker-1"]).nodes == ("worker-1",)


@pytest.mark.parametrize("argv", [["--bogus"], ["-Z"], ["-n"], ["--insecure-skip-tls-verify=maybe"],
                                  ["-n", "a", "--namespace", "b"], ["--all=yes"]])
def test_bad_options(argv):
    with pytest.raises(Usage):
        parse(argv)


def test_global_flags_reach_every_kubectl_call(fake):
    p = fake.run("web-1", "-n", "shop", "--context=prod", "--as", "jane", "--request-timeout=9s",
                 "--", "diagnose", "x")
    assert p.returncode == 0, p.stderr
    calls = fake.calls()
    assert {c[0] for c in calls} >= {"--context=prod"}
    for c in calls:
        assert c[:2] == ["--context=prod", "--as=jane"], c
        assert ("--request-timeout=9s" in c) != ("logs" in c), c   # not on the log stream


def test_version_and_help(fake):
    p = fake.run("--version")
    assert p.returncode == 0 and p.stdout.startswith("kubectl-podtriage 0.1.0")
    p = fake.run("-h")
    assert p.returncode == 0 and "kubectl podtriage POD" in p.stdout
    assert not fake.calls()


def test_default_container_annotation(fake):
    fake.set(pod=pod(containers=("linkerd-proxy", "app"),
                     annotations={"kubectl.kubernetes.io/default-container": "app"}))
    p = fake.run("web-1", "-n", "shop", "--", "diagnose", "x")
    assert p.returncode == 0, p.stderr
    (debug,) = [c for c in fake.calls() if verb(c) == "debug"]
    assert "--target=app" in debug


@pytest.mark.parametrize("profile", ["netadmin", "general", "baseline", "restricted",
                                     "sysadmin", "legacy"])
def test_every_kubectl_debug_profile(fake, profile):
    p = fake.run("web-1", "-n", "shop", "--profile", profile, "--", "diagnose", "x")
    assert p.returncode == 0, p.stderr
    (debug,) = [c for c in fake.calls() if verb(c) == "debug"]
    assert "--profile=%s" % profile in debug


def test_custom_file_is_read_before_and_passed(fake, tmp_path):
    custom = tmp_path / "c.json"
    custom.write_text('{"securityContext": {"runAsUser": 0}}')
    p = fake.run("web-1", "-n", "shop", "--custom", str(custom), "--", "diagnose", "x")
    assert p.returncode == 0, p.stderr
    (debug,) = [c for c in fake.calls() if verb(c) == "debug"]
    assert "--custom=%s" % custom in debug
    p = fake.run("web-1", "--custom", str(custom), "--dry-run", "--", "diagnose", "x")
    assert "runAsUser: 0" in p.stdout
    for bad in ("[1, 2]", "{{{"):
        custom.write_text(bad)
        p = fake.run("web-1", "--custom", str(custom), "--", "diagnose", "x")
        assert p.returncode == 3 and "Traceback" not in p.stderr
    n = len(fake.calls())
    p = fake.run("web-1", "--custom", str(tmp_path / "missing"), "--", "diagnose", "x")
    assert p.returncode == 3 and len(fake.calls()) == n


# ---------------------------------------------------------------- check before touching
@pytest.mark.parametrize("args,says", [
    (["diagnos", "api.corp.example"], "No such command 'diagnos'"),
    (["diagnose"], "Missing argument"),
    (["diagnose", "x", "--port", "0"], "--port"),
    (["diagnose", "x", "--deadline", "nan"], "--deadline"),
    (["diagnose", "x", "--corefiles"], "--corefiles is an option of kubectl podtriage"),
    (["diagnose", "x", "--dry-run"], "--dry-run is an option of kubectl podtriage"),
    (["diagnose", "x", "-n", "shop"], "-n is an option of kubectl podtriage"),
    (["resolve", "x", "--server", "10.0.0.1%eth0"], "link-local"),
    (["corefile"], "needs a command"),
    (["-o", "json", "diagnose", "x"], "go after its command"),
])
def test_usage_errors_after_dashdash_touch_nothing(fake, args, says):
    p = fake.run("web-1", "-n", "shop", "--", *args)
    assert p.returncode == 2, p.stderr
    assert says in p.stderr, p.stderr
    assert fake.calls() == []              # not one kubectl call: nothing read, nothing made


def test_pods_and_nodes_check_too(fake):
    for argv in (["pods", "-l", "app=web", "--", "diagnose", "x", "--port", "x"],
                 ["nodes", "--all", "--", "conntrack", "race-test"],
                 ["node/n1", "--", "conntrack", "--bogus"]):
        p = fake.run(*argv)
        assert p.returncode == 2, (argv, p.stderr)
    assert fake.calls() == []


def test_link_local_scope_is_the_containers_business():
    check_podtriage_args(["resolve", "x", "--server", "fe80::25:10%eth7"])   # no eth7 here


def test_help_after_dashdash_prints_podtriages_help(fake):
    p = fake.run("web-1", "--", "diagnose", "--help")
    assert p.returncode == 0 and "Usage: podtriage diagnose" in p.stdout
    assert fake.calls() == []
    with pytest.raises(Help):
        check_podtriage_args(["--version"])


@pytest.mark.parametrize("args", [["x", "notaport"], ["--bogus", "x"], [], ["a", "1", "2"]])
def test_runbook_arguments_are_checked_too(fake, args):
    p = fake.run("web-1", "--runbook", "service-unreachable", "--", *args)
    assert p.returncode == 2, p.stderr
    assert fake.calls() == []


# ---------------------------------------------------------------- PodSecurity
def test_refusal_is_retried_once_with_the_admitted_profile(fake):
    fake.set(pod=pod(), refuse="baseline", refuse_times=1, log="{}\n")
    p = fake.run("web-1", "-n", "shop", "--", "diagnose", "x")
    assert p.returncode == 0, p.stderr
    debugs = [c for c in fake.calls() if verb(c) == "debug"]
    assert [next(a for a in d if a.startswith("--profile=")) for d in debugs] == [
        "--profile=netadmin", "--profile=baseline"]
    assert "retrying once with --profile=baseline" in p.stderr


@pytest.mark.parametrize("flags", [["--no-retry"], ["--profile", "netadmin"]])
def test_refusal_without_retry_gives_the_exact_command(fake, flags):
    fake.set(pod=pod(), refuse="restricted", refuse_times=5)
    p = fake.run("web-1", "-n", "shop", *flags, "--", "diagnose", "x", "--port", "80")
    assert p.returncode == 3
    assert "kubectl podtriage web-1 -n shop --profile=restricted -- diagnose x --port 80" in p.stderr
    assert len([c for c in fake.calls() if verb(c) == "debug"]) == 1


def test_namespace_label_picks_the_profile_without_a_refusal(fake):
    fake.set(pod=pod(), namespace_labels={"pod-security.kubernetes.io/enforce": "restricted"})
    p = fake.run("web-1", "-n", "shop", "--", "diagnose", "x")
    assert p.returncode == 0
    (debug,) = [c for c in fake.calls() if verb(c) == "debug"]
    assert "--profile=restricted" in debug and "degraded" in p.stderr


# ---------------------------------------------------------------- progress
def test_progress_only_when_asked(fake):
    fake.set(pod=pod(), log="{}\n")
    p = fake.run("web-1", "--", "diagnose", "x", PODTRIAGE_PROGRESS="1")
    assert "s] shop/web-1: podtriage started" in p.stderr, p.stderr
    p = fake.run("web-1", "-q", "--", "diagnose", "x", PODTRIAGE_PROGRESS="1")
    assert "s] " not in p.stderr
    p = fake.run("web-1", "--", "diagnose", "x")            # stderr is a pipe, not a terminal
    assert "s] " not in p.stderr


# ---------------------------------------------------------------- completion
def test_completion(fake):
    fake.set(pod=pod(), pods=["web-1", "web-2"], nodes=["n1"], namespaces=["shop", "default"])
    p = fake.run("-n", "shop", "", program=COMPLETE)
    words = p.stdout.split()
    assert words[-1] == ":4" and {"pods", "nodes", "node/n1", "web-1", "web-2"} <= set(words)
    assert ["get", "pods", "-n", "shop", "-o", "name"] in fake.calls()
    p = fake.run("web-1", "--", "diag", program=COMPLETE)
    assert p.stdout.split() == ["diagnose", ":4"]
    p = fake.run("web-1", "--", "diagnose", "x", "--ref", program=COMPLETE)
    assert "--reference" in p.stdout.split()
    p = fake.run("--profile", "", program=COMPLETE)
    assert set(p.stdout.split()[:-1]) == {"netadmin", "general", "baseline", "restricted",
                                          "sysadmin", "legacy"}
    p = fake.run("--custom", "", program=COMPLETE)
    assert p.stdout.split() == [":0"]                      # a file: the shell completes it
    p = fake.run("__complete", "-o", "", program=PLUGIN)
    assert "json" in p.stdout.split()


def test_typer_completion_for_podtriage():
    env = {**os.environ, "_PODTRIAGE_COMPLETE": "complete_bash", "COMP_WORDS": "podtriage diag",
           "COMP_CWORD": "1"}
    p = subprocess.run([str(ROOT / ".venv" / "bin" / "podtriage")], capture_output=True,
                       text=True, env=env, timeout=30)
    assert "diagnose" in p.stdout.split(), p.stdout + p.stderr
    # Typer names the shell by walking the parent processes (shellingham), not from $SHELL:
    # run under a bash that stays the parent (a second command keeps bash from exec'ing the
    # first), or the answer depends on who started pytest ("Shell None not supported" once).
    p = subprocess.run(["bash", "-c", '"$0" --show-completion; exit $?', str(ROOT / ".venv" / "bin" / "podtriage")],
                       capture_output=True, text=True, timeout=30,
                       env={**os.environ, "SHELL": "/bin/bash"})
    assert p.returncode == 0 and "_PODTRIAGE_COMPLETE" in p.stdout
    assert sys.version_info >= (3, 11)
