"""`podtriage resolvconf` end to end through Typer (no network, no root)."""

from __future__ import annotations

import json
import os

from typer.testing import CliRunner

from toolkit.cli import app

SEED = ("nameserver 169.254.25.10\n"
        "search wxwork.svc.alpha.pm.k8s svc.alpha.pm.k8s alpha.pm.k8s\n"
        "options ndots:5\n")


def files(tmp_path, resolv=SEED, hosts="127.0.0.1 localhost\n", nss="hosts: files dns\n"):
    r, h, n = tmp_path / "resolv.conf", tmp_path / "hosts", tmp_path / "nsswitch.conf"
    r.write_bytes(resolv if isinstance(resolv, bytes) else resolv.encode())
    h.write_text(hosts)
    n.write_text(nss)
    return ["--file", str(r), "--hosts", str(h), "--nsswitch", str(n)]


def invoke(args):
    return CliRunner().invoke(app, ["resolvconf", *args])


def test_json_document(tmp_path):
    res = invoke([*files(tmp_path), "--name", "api.corp.example", "-o", "json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["schema_version"] == 1 and doc["command"] == "resolvconf" and doc["verdict"] == "ok"
    assert doc["candidates"] == ["api.corp.example.wxwork.svc.alpha.pm.k8s.",
                                 "api.corp.example.svc.alpha.pm.k8s.",
                                 "api.corp.example.alpha.pm.k8s.", "api.corp.example."]
    assert doc["queries"] == 8 and doc["worst_case_fail_s"] == 20.0
    assert doc["options"]["ndots"] == 5 and doc["nameservers"] == ["169.254.25.10"]
    assert doc["hosts_line"][0] == {"source": "files", "criteria": []}
    assert doc["hosts_overrides"] == []
    found = {f["code"] for f in doc["findings"]}
    assert {"nodelocal-single-nameserver", "ndots-search-amplification"} <= found
    for f in doc["findings"]:
        assert set(f) >= {"code", "severity", "summary", "evidence", "remedy"} and f["remedy"]


def test_hosts_override_and_table(tmp_path):
    res = invoke([*files(tmp_path, hosts="10.1.1.1 api.corp.example\n"), "-n", "api.corp.example"])
    assert res.exit_code == 0
    assert "hosts-override" in res.stdout and "query #" in res.stdout and "1-2" in res.stdout


def test_markdown_and_ndjson(tmp_path):
    for fmt in ("markdown", "ndjson"):
        res = invoke([*files(tmp_path), "--name", "kubernetes", "-o", fmt])
        assert res.exit_code == 0 and res.stdout.strip()


def test_no_nameserver_is_dns_unavailable(tmp_path):
    res = invoke([*files(tmp_path, resolv=""), "-o", "json"])
    assert res.exit_code == 1
    doc = json.loads(res.stdout)
    assert doc["verdict"] == "dns-unavailable" and doc["nameservers"] == ["127.0.0.1"]


def test_binary_file_no_traceback(tmp_path):
    res = invoke([*files(tmp_path, resolv=os.urandom(100_000) + b"\0"), "-o", "json"])
    assert res.exit_code == 5, res.output          # indeterminate: not a resolv.conf at all
    doc = json.loads(res.stdout)
    assert any(f["code"] == "file-binary" and f["severity"] == "critical" for f in doc["findings"])


def test_malformed_lines(tmp_path):
    res = invoke([*files(tmp_path, resolv="  nameserver 1.1.1.1\nnameserver 2.2.2.2\nfoo bar\n"), "-o", "json"])
    doc = json.loads(res.stdout)
    mal = next(f for f in doc["findings"] if f["code"] == "malformed-line")
    assert mal["data"]["lines"] == [1, 3] and doc["nameservers"] == ["2.2.2.2"]


def test_directory_is_input_error(tmp_path):
    res = invoke(["--file", str(tmp_path)])
    assert res.exit_code == 3 and "Traceback" not in res.output


def test_help_teaches():
    res = CliRunner().invoke(app, ["resolvconf", "--help"])
    assert res.exit_code == 0 and "Example: podtriage resolvconf" in res.stdout
