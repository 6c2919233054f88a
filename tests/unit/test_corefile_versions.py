"""The per-version plugin orders against CoreDNS's own plugin.cfg (tests/data/coredns/, and
every version the Go module cache holds), and --coredns-version / the image's version."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

import toolkit.cli.corefile  # noqa: F401  (registers the sub-app)
from toolkit.cli import app
from toolkit.corefile.plugins import versions
from toolkit.corefile.plugins.base import Semantics
from toolkit.corefile.plugins.chain import chain
from toolkit.corefile.parser import parse_corefile

DATA = Path(__file__).resolve().parents[1] / "data" / "coredns"
runner = CliRunner()


def _cfg(path: Path) -> tuple[str, ...]:
    return tuple(line.split(":", 1)[0].strip() for line in path.read_text().splitlines()
                 if line.strip() and not line.startswith("#"))


@pytest.mark.parametrize("version", ["1.11.3", "1.12.1", "1.14.7"])
def test_order_is_plugin_cfg(version):
    assert versions.coredns_build(version).order == _cfg(DATA / f"plugin-{version}.cfg")


def test_every_cached_module_matches():
    try:
        cache = subprocess.run(["go", "env", "GOMODCACHE"], capture_output=True, text=True,
                               timeout=20).stdout.strip()
    except OSError:
        cache = os.path.expanduser("~/go/pkg/mod")
    root = Path(cache or os.path.expanduser("~/go/pkg/mod")) / "github.com" / "coredns"
    checked = 0
    for d in sorted(root.glob("coredns@v1.1[1-4].*")):
        v = d.name.split("@v", 1)[1]
        if "-" in v or not (d / "plugin.cfg").exists():
            continue
        table = versions.coredns_build(v)
        if any(k == versions.parse_version(v) for k, _ in versions.ORDERS):
            assert table.order == _cfg(d / "plugin.cfg"), v
            checked += 1
    assert checked >= 2  # at least the two pinned ones (the lab builds them)


def test_rewrite_runs_before_cache_only_in_1_14_7():
    block = parse_corefile(".:53 {\n cache\n rewrite name a.example b.example\n forward . 1.1.1.1\n}\n").blocks[0]
    old = [p for p, _ in chain(block, Semantics(versions.coredns_build("1.12.1")))]
    new = [p for p, _ in chain(block, Semantics(versions.coredns_build("1.14.7")))]
    assert old == ["cache", "rewrite", "forward"] and new == ["rewrite", "cache", "forward"]


def test_between_tables_and_images():
    assert versions.coredns_build("1.14.5").order == versions.coredns_build("1.14.3").order
    assert "nearest table" in versions.coredns_build("1.14.5").why
    assert versions.version_from_image("registry.k8s.io/coredns/coredns:v1.12.1") == "1.12.1"
    assert versions.version_from_image("mirror.example/coredns:1.11.3@sha256:ab") == "1.11.3"
    assert versions.version_from_image("registry.k8s.io/dns/k8s-dns-node-cache:1.26.4") is None
    nc = versions.node_cache_build()
    assert "kubernetes" not in nc.compiled and "forward" in nc.compiled


def test_image_in_input_selects_version(tmp_path):
    cm = ("apiVersion: v1\nkind: List\nitems:\n- apiVersion: apps/v1\n  kind: Deployment\n"
          "  metadata: {name: coredns, namespace: kube-system}\n  spec:\n    template:\n"
          "      spec:\n        containers:\n        - name: coredns\n"
          "          image: registry.k8s.io/coredns/coredns:v1.12.1\n"
          "- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: coredns, namespace: kube-system}\n"
          "  data:\n    Corefile: |\n      .:53 {\n        errors\n        nomad\n        forward . 1.1.1.1\n      }\n")
    p = tmp_path / "cm.yaml"
    p.write_text(cm)
    # nomad came in 1.13: CoreDNS 1.12.1 (the image) refuses it, 1.14.7 does not.
    res = runner.invoke(app, ["corefile", "lint", str(p), "-o", "json"])
    doc = json.loads(res.stdout)
    assert res.exit_code == 1 and "unknown-plugin" in {f["code"] for f in doc["findings"]}
    res = runner.invoke(app, ["corefile", "lint", str(p), "--coredns-version", "1.14.7", "-o", "json"])
    assert "unknown-plugin" not in {f["code"] for f in json.loads(res.stdout)["findings"]}
    res = runner.invoke(app, ["corefile", "lint", str(p), "--coredns-version", "x1"])
    assert res.exit_code == 2
