"""Every external program the repository starts is installed by scripts/setup (issue 19).

A fresh Debian 12 machine has none of what the lab and the tests run; CI was green only
where someone had installed the rest by hand. scripts/programs.tsv is the one list that
scripts/setup installs from; this test scans the code (tests/programs.py says how) and fails
on a program that the list does not hold.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.programs import PROGRAMS_TSV, ROOT, read_programs, scan_python, scan_shell, scan_tree


def test_every_program_started_is_in_programs_tsv():
    listed = read_programs()
    missing = {p: sorted(files) for p, files in scan_tree().items() if p not in listed}
    assert not missing, (
        "programs started but not installed by scripts/setup (add them to %s with the package "
        "and why): %s" % (PROGRAMS_TSV.relative_to(ROOT), missing))


def test_programs_tsv_rows_are_complete():
    rows = read_programs()
    assert rows
    for r in rows.values():
        assert r.package and r.why, r
        assert r.package.startswith("@") is False or r.package in ("@go", "@venv"), r


def test_setup_reads_the_list_and_never_installs_debian_go():
    setup = (ROOT / "scripts" / "setup").read_text()
    assert "programs.tsv" in setup
    assert "golang-go" not in [r.package for r in read_programs().values()]


def test_scripts_that_build_or_test_use_the_go_setup_chose():
    for name in ("test", "demo", "bench"):
        assert ".venv/tools/bin" in (ROOT / "scripts" / name).read_text(), name


# ---- the scanner itself, on small inputs (so that a blind spot is a test failure here)
@pytest.mark.parametrize("src,want", [
    ('import subprocess\nsubprocess.run(["tcpreplay", "-q"])', {"tcpreplay"}),
    ('import subprocess as sp\nsp.Popen(["ip", "netns", "exec", ns, "dig", "x"])', {"dig"}),
    ('import shutil\nshutil.which("skopeo")', {"skopeo"}),
    ('lab.exec("pod", "curl", "-s", url)', {"curl"}),
    ('cmd = ["unbound", "-c", conf]', {"unbound"}),
    ('subprocess.run(["timeout", "5", "tcpdump", "-i", "x"])', {"tcpdump"}),
    ('subprocess.run(["env", "GODEBUG=netdns=go", "go", "build"])', {"go"}),
    ('subprocess.run(["bash", "-c", "conntrack -L | grep 53"])', {"bash", "conntrack", "grep"}),
    ('k.run(["get", "pods"])', set()),                 # a kubectl wrapper's arguments
    ('subprocess.run([str(binary), "-x"])', set()),     # not a literal: checked where built
])
def test_scan_python(src, want):
    assert scan_python(src) == want


@pytest.mark.parametrize("src,want", [
    ("tcpreplay -i eth0 x.pcap\n", {"tcpreplay"}),
    ('x=$(skopeo inspect "$ref")\n', {"skopeo"}),
    ("FOO=1 BAR=2 conntrack -L\n", {"conntrack"}),
    ("ip netns exec pt-pod dig +short x | sort\n", {"dig", "sort"}),
    ("cat > f <<'EOF'\nnot a command here\nEOF\nrunc list\n", {"cat", "runc"}),
    ('echo "a (b) c; d"\n', set()),
    ("log() { echo hi; }\nlog x\n", set()),
    ('case "$x" in\n  1) jq . ;;\n  *) yq . ;;\nesac\n', {"jq", "yq"}),
    ("args=(capture --duration 5)\n", set()),
    ('[ -n "$x" ] && buildah rm "$c"\n', {"buildah"}),
    ("if command -v go >/dev/null; then :; fi\n", set()),
])
def test_scan_shell(src, want):
    assert scan_shell(src) == want


def test_programs_tsv_packages_exist_in_debian_when_apt_is_here():
    """Each Debian package of the list is known to apt (a typo would fail only on a fresh machine)."""
    import shutil
    if shutil.which("apt-cache") is None:
        pytest.skip("no apt-cache: not a Debian machine")
    pkgs = sorted({r.package for r in read_programs().values() if not r.package.startswith("@")})
    p = subprocess.run(["apt-cache", "show", "--no-all-versions", *pkgs], capture_output=True, text=True)
    known = {line.split(":", 1)[1].strip() for line in p.stdout.splitlines() if line.startswith("Package:")}
    assert set(pkgs) <= known, sorted(set(pkgs) - known)
