"""scripts/build-release (issue 25 item 8): the wheel, the single-file kubectl-podtriage
(a zipapp run here by Debian's own /usr/bin/python3, isolated from every site-packages: it
needs only python3), the archive krew installs, and plugins/podtriage.yaml validated against
krew's manifest rules (tests/data/krew: the schema and where it comes from)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tarfile
import zipfile
from pathlib import Path

import jsonschema
import pytest
import yaml
from tests.hostile import small_document

ROOT = Path(__file__).resolve().parents[2]
KREW = ROOT / "tests" / "data" / "krew"
SYSTEM_PYTHON = "/usr/bin/python3"          # Debian's python3 3.11, not the venv's
FAKE = ROOT / "tests" / "kube" / "fakekubectl.py"


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    p = subprocess.run([str(ROOT / "scripts" / "build-release"), "--out", str(out),
                        "--manifest", str(out / "podtriage.yaml")],
                       capture_output=True, text=True, timeout=600,
                       env={**os.environ, "SOURCE_DATE_EPOCH": "1767225600"})
    assert p.returncode == 0, p.stderr
    return out


def schema():
    return jsonschema.Draft202012Validator(json.loads((KREW / "plugin-v1alpha2.schema.json").read_text()))


def test_schema_accepts_what_krew_accepts_and_refuses_what_it_refuses():
    v = schema()
    v.check_schema(v.schema)
    for f in sorted((KREW / "accepted").glob("*.yaml")):
        assert not list(v.iter_errors(yaml.safe_load(f.read_text()))), f.name
    for f in sorted((KREW / "refused").glob("*.yaml")):
        assert list(v.iter_errors(yaml.safe_load(f.read_text()))), f.name


def _ours():
    return yaml.safe_load((ROOT / "plugins" / "podtriage.yaml").read_text())


@pytest.mark.parametrize("path,value", [
    (("spec", "platforms", 0, "sha256"), "ABC"),
    (("spec", "platforms", 0, "sha256"), None),
    (("spec", "shortDescription"), "two\nlines"),
    (("spec", "shortDescription"), ""),
    (("spec", "version"), "0.1.0"),                  # krew's semver wants the v
    (("spec", "platforms", 0, "selector"), {"matchLabels": {"distro": "debian"}}),
    (("spec", "platforms", 0, "selector"), {}),
    (("spec", "platforms", 0, "files"), []),
    (("spec", "platforms", 0, "bin"), ""),
    (("spec", "platforms"), []),
    (("metadata", "name"), "pod triage"),
    (("metadata", "name"), "con"),
    (("kind", ), "Plugins"),
    (("spec", "homepages"), "https://example.com"),
])
def test_schema_refuses_what_krew_refuses(path, value):
    doc = _ours()
    obj = doc
    for key in path[:-1]:
        obj = obj[key]
    if value is None:
        del obj[path[-1]]
    else:
        obj[path[-1]] = value
    assert list(schema().iter_errors(doc)), (path, value)


def test_committed_manifest_is_valid_for_krew():
    doc = _ours()
    assert not list(schema().iter_errors(doc))
    assert doc["metadata"]["name"] == "podtriage"               # krew: the file's name
    version = {}
    exec((ROOT / "toolkit" / "__init__.py").read_text().split("\n# The image")[0], version)
    assert doc["spec"]["version"] == "v" + version["__version__"]


def test_built_manifest_names_the_archive_and_its_sha256(release):
    doc = yaml.safe_load((release / "podtriage.yaml").read_text())
    assert not list(schema().iter_errors(doc))
    (plat,) = doc["spec"]["platforms"]
    archive = release / Path(plat["uri"]).name
    assert hashlib.sha256(archive.read_bytes()).hexdigest() == plat["sha256"]
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        assert {f["from"] for f in plat["files"]} <= set(names) and plat["bin"] in names
        assert "LICENSE" in names                    # krew-index requires a license file
        assert all(m.uid == 0 and m.mtime == 1767225600 for m in tar.getmembers())


def test_release_is_reproducible(release, tmp_path):
    p = subprocess.run([str(ROOT / "scripts" / "build-release"), "--out", str(tmp_path),
                        "--no-wheel", "--manifest", str(tmp_path / "podtriage.yaml")],
                       capture_output=True, text=True, timeout=300,
                       env={**os.environ, "SOURCE_DATE_EPOCH": "1767225600"})
    assert p.returncode == 0, p.stderr
    for name in ("kubectl-podtriage", "kubectl-podtriage-v0.1.0.tar.gz", "podtriage.yaml"):
        assert (tmp_path / name).read_bytes() == (release / name).read_bytes(), name


def test_wheel_carries_both_console_scripts(release):
    (whl,) = release.glob("podtriage-*-py3-none-any.whl")
    with zipfile.ZipFile(whl) as z:
        names = z.namelist()
        eps = z.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "toolkit/kube/cli.py" in names
    assert "kubectl-podtriage = toolkit.kube.cli:main" in eps
    assert "kubectl_complete-podtriage = toolkit.kube.complete:main" in eps


def _zipapp(release, *args, **env):
    """The single file run by Debian's python3 with no site-packages at all (-I -S)."""
    e = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8", **env}
    return subprocess.run([SYSTEM_PYTHON, "-I", "-S", str(release / "kubectl-podtriage"), *args],
                          capture_output=True, text=True, env=e, timeout=60)


def test_zipapp_runs_on_debians_python3_alone(release, tmp_path):
    p = subprocess.run([SYSTEM_PYTHON, "--version"], capture_output=True, text=True)
    assert p.stdout.startswith("Python 3.11")
    assert (release / "kubectl-podtriage").read_bytes().startswith(b"#!/usr/bin/env python3\n")
    p = _zipapp(release, "--version")
    assert p.returncode == 0 and p.stdout.startswith("kubectl-podtriage 0.1.0"), p.stderr
    p = _zipapp(release, "--help")
    assert p.returncode == 0 and "kubectl podtriage POD" in p.stdout
    p = _zipapp(release, "web", "--", "diagnos", "x")            # podtriage's own parser
    assert p.returncode == 2 and "Did you mean 'diagnose'" in p.stderr
    p = _zipapp(release, "web", "--", "diagnose", "--help")
    assert p.returncode == 0 and "Usage: podtriage diagnose" in p.stdout
    p = _zipapp(release, "nodes", "--all", "--dry-run")
    assert p.returncode == 0 and "kind: Job" in p.stdout
    # a fleet, merged and rendered in each format, against a fake kubectl
    pod = {"metadata": {"name": "web-1", "namespace": "shop"},
           "spec": {"nodeName": "n1", "containers": [{"name": "app"}]}, "status": {"phase": "Running"}}
    doc = small_document(verdict="ok")    # the plugin merges only schema-valid documents
    (tmp_path / "sc.json").write_text(json.dumps({"pod": pod, "items": [pod], "log": json.dumps(doc) + "\n",
                                                  "pods": ["web-1"]}))
    fake = {"KUBECTL": str(FAKE), "FAKE_LOG": str(tmp_path / "log"),
            "FAKE_SCENARIO": str(tmp_path / "sc.json"), "PODTRIAGE_POLL_INTERVAL": "0"}
    for fmt in ("table", "json", "ndjson", "markdown"):
        p = _zipapp(release, "pods", "-l", "app=web", "-o", fmt, "--", "diagnose", "x", **fake)
        assert p.returncode == 0, (fmt, p.stderr)
        assert "ok" in p.stdout
    p = _zipapp(release, "__complete", "", **fake)
    assert "web-1" in p.stdout.split() and p.stdout.split()[-1] == ":4"
    # the completion launcher finds the plugin beside it
    p = subprocess.run([str(release / "kubectl_complete-podtriage"), "--profile", ""],
                       capture_output=True, text=True, timeout=60,
                       env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"})
    assert "netadmin" in p.stdout.split()


def test_zipapp_carries_no_compiled_code(release):
    with zipfile.ZipFile(release / "kubectl-podtriage") as z:
        names = z.namelist()
    assert not [n for n in names if n.endswith((".so", ".pyc", ".pyd"))]
    assert not [n for n in names if n.split("/")[0] in ("scapy", "psutil", "pyroute2", "pygments")]
    assert "toolkit/kube/cli.py" in names and "typer/__init__.py" in names
    assert (release / "kubectl-podtriage").stat().st_size < 3 << 20
