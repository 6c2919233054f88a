"""`podtriage corefile lint|trace|check` through the real Typer app: exit codes and JSON keys."""
import json

from typer.testing import CliRunner

import toolkit.cli.corefile  # noqa: F401  (registers the sub-app)
from toolkit.cli import app

from tests.unit.test_corefile_parser import SEED_COREDNS, SEED_NODELOCAL, shared_dir
from tests.unit.test_corefile_lint import KUBEADM

runner = CliRunner()


def test_lint_seed_exit_1_json():
    res = runner.invoke(app, ["corefile", "lint", str(shared_dir() / SEED_NODELOCAL),
                              str(shared_dir() / SEED_COREDNS), "-o", "json"])
    assert res.exit_code == 1, res.output
    doc = json.loads(res.stdout)
    assert doc["command"] == "corefile lint" and doc["verdict"] == "dns-error"
    assert {"files", "blocks", "findings"} <= set(doc)
    assert len(doc["files"]) == 2 and len(doc["blocks"]) == 6
    assert set(doc["blocks"][0]) >= {"zones", "ports", "line", "plugins"}
    dup = [f for f in doc["findings"] if f["code"] == "duplicate-plugin"][0]
    assert dup["data"]["line"] == 32 and dup["data"]["file_line"] == 41


def test_lint_clean_exit_0_and_stdin(tmp_path):
    p = tmp_path / "Corefile"
    p.write_text(KUBEADM)
    assert runner.invoke(app, ["corefile", "lint", str(p)]).exit_code == 0
    res = runner.invoke(app, ["corefile", "lint", "-", "-o", "json"], input=KUBEADM)
    assert res.exit_code == 0 and json.loads(res.stdout)["verdict"] == "ok"


def test_lint_exit_3_on_missing_or_broken(tmp_path):
    res = runner.invoke(app, ["corefile", "lint", str(tmp_path / "nope")])
    assert res.exit_code == 3
    p = tmp_path / "Corefile"
    p.write_text(". {\n  whoami\n")
    res = runner.invoke(app, ["corefile", "lint", str(p)])
    assert res.exit_code == 3 and "line 1" in res.output


def test_trace_seed_json():
    res = runner.invoke(app, ["corefile", "trace", "api.xxx.xxx.xxx",
                              "--corefile", str(shared_dir() / SEED_NODELOCAL),
                              "--corefile", str(shared_dir() / SEED_COREDNS),
                              "--service-ip", "10.233.0.3", "-o", "json"])
    assert res.exit_code == 1, res.output
    doc = json.loads(res.stdout)
    assert doc["command"] == "corefile trace" and doc["name"] == "api.xxx.xxx.xxx."
    hops = doc["hops"]
    assert [h["block"] for h in hops] == [".:53", "xxx.xxx.xxx:53"]
    assert hops[0]["next"] == {**hops[0]["next"], "target": "10.233.0.3:53", "transport": "tcp"}
    assert hops[1]["next"]["target"] == "xxx.xxx.xxx.xxx"


def test_trace_ok_exit_0_and_usage_error():
    args = ["corefile", "trace", "www.example.com", "-c", str(shared_dir() / SEED_NODELOCAL),
            "-c", str(shared_dir() / SEED_COREDNS)]
    assert runner.invoke(app, args).exit_code == 0
    assert runner.invoke(app, args + ["--service-ip", "nope"]).exit_code == 2


def test_check_seed_has_nothing_to_probe_and_says_why():
    # The seed's CoreDNS forwards to /etc/resolv.conf and to a masked address: neither can be
    # probed (no network here; the lab test probes real targets).
    res = runner.invoke(app, ["corefile", "check", str(shared_dir() / SEED_COREDNS), "-o", "json"])
    assert res.exit_code == 5      # indeterminate: could not tell (not 1, "problem found")
    doc = json.loads(res.stdout)
    assert doc["verdict"] == "indeterminate" and doc["targets"] == []
    notes = " ".join(doc["notes"])
    assert "/etc/resolv.conf not probed" in notes and "xxx.xxx.xxx.xxx not probed" in notes
