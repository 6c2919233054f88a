"""read_snapshot over recorded sources: a fake /proc, recorded ctnetlink answers, missing
NET_ADMIN, a kernel without the procfs file; and the CLI's exit 3 when nothing is readable."""
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from toolkit.conntrack import snapshot as snapmod
from toolkit.conntrack.report import counters_report, ensure_observable
from toolkit.conntrack.snapshot import read_snapshot
from toolkit.errors import EXIT_CANNOT_OBSERVE, MissingCapability
from toolkit.sysinfo.netns import NetnsInfo

DATA = Path(__file__).parent / "data" / "conntrack"
POD_NS = NetnsInfo(inode=4026532999, is_init=False, method="test")
NODE_NS = NetnsInfo(inode=4026531833, is_init=True, method="test")
ALL = frozenset({"NET_ADMIN", "NET_RAW"})


def fake_proc(tmp: Path, *, stat: str | None = "proc_stat_6.1_before.txt",
              entries: str | None = "proc_nf_conntrack_lab.txt", count: int | None = 15,
              cmax: int = 262144, sysctls: bool = True) -> Path:
    root = tmp / "proc"
    (root / "sys/kernel").mkdir(parents=True)
    (root / "sys/kernel/osrelease").write_text("6.1.0-18-amd64\n")
    (root / "net/stat").mkdir(parents=True)
    if stat:
        (root / "net/stat/nf_conntrack").write_text((DATA / stat).read_text())
    if entries:
        (root / "net/nf_conntrack").write_text((DATA / entries).read_text())
    if sysctls:
        d = root / "sys/net/netfilter"
        d.mkdir(parents=True)
        vals = {"nf_conntrack_max": cmax, "nf_conntrack_udp_timeout": 30,
                "nf_conntrack_udp_timeout_stream": 120, "nf_conntrack_tcp_timeout_established": 432000,
                "nf_conntrack_buckets": 65536, "nf_conntrack_acct": 1}
        if count is not None:
            vals["nf_conntrack_count"] = count
        for k, v in vals.items():
            (d / k).write_text(f"{v}\n")
    return root


class Recorded:
    """ctnetlink answers recorded from pyroute2 (stats) and netlink_to_dict (entries)."""

    def __init__(self, stats="netlink_stats_before.json", fail: Exception | None = None):
        self._stats = json.loads((DATA / stats).read_text())
        self._fail = fail

    def stats(self):
        if self._fail:
            raise self._fail
        return self._stats

    def count_max(self):
        return 15, 262144

    def dump(self):
        return iter(json.loads((DATA / "netlink_entries_lab.json").read_text()))

    def close(self):
        pass


def test_full_view_prefers_ctnetlink(tmp_path):
    s = read_snapshot(proc_root=str(fake_proc(tmp_path)), caps=ALL, netlink=Recorded, netns=POD_NS)
    assert s.counters.source == "ctnetlink" and s.entries_source == "ctnetlink"
    assert s.count == 15 and s.max == 262144 and s.sysctls["nf_conntrack_udp_timeout"] == 30
    assert s.kernel.release == "6.1.0-18-amd64"
    assert all(src.ok for src in s.sources)
    assert {e.dnat_target for e in s.entries if e.orig_dst == "10.96.0.10"} == {"10.245.91.2:53", "10.245.92.2:53"}


def test_kernel_without_procfs_file_uses_ctnetlink(tmp_path):
    root = fake_proc(tmp_path, stat=None, entries=None)
    s = read_snapshot(proc_root=str(root), caps=ALL, netlink=Recorded, netns=POD_NS)
    assert s.counters.source == "ctnetlink" and s.entries_source == "ctnetlink"
    failed = {x.name: x.detail for x in s.failed}
    assert "CONFIG_NF_CONNTRACK_PROCFS" in failed["/proc/net/stat/nf_conntrack"]


def test_missing_net_admin_falls_back_to_procfs(tmp_path):
    def boom():
        raise AssertionError("ctnetlink must not be tried without NET_ADMIN")

    s = read_snapshot(proc_root=str(fake_proc(tmp_path)), caps=frozenset({"NET_RAW"}), netlink=boom, netns=POD_NS)
    assert s.readable and not s.net_admin
    assert s.counters.source == "procfs" and s.entries_source == "/proc/net/nf_conntrack"
    assert s.missing_capabilities == ("NET_ADMIN",)
    ensure_observable(s)  # something was readable: no exception
    rep = counters_report(s, s, interval_s=0.0)
    assert any("NET_ADMIN" in n and "--profile=netadmin" in n for n in rep.notes)
    assert any("counters from procfs" in n for n in rep.notes)


def test_kernel_refuses_netlink_eperm(tmp_path):
    err = OSError(1, "Operation not permitted")
    s = read_snapshot(proc_root=str(fake_proc(tmp_path)), caps=ALL, netlink=lambda: Recorded(fail=err),
                      netns=POD_NS)
    assert s.counters.source == "procfs"
    assert "NET_ADMIN" in s.missing_capabilities


def test_nothing_readable_without_net_admin_is_exit_3(tmp_path):
    root = fake_proc(tmp_path, stat=None, entries=None, sysctls=False)
    s = read_snapshot(proc_root=str(root), caps=frozenset(), netns=POD_NS)
    assert not s.readable
    with pytest.raises(MissingCapability) as ei:
        ensure_observable(s)
    assert ei.value.exit_code == EXIT_CANNOT_OBSERVE
    assert "NET_ADMIN" in ei.value.message and "--profile=netadmin" in ei.value.hint


def test_cli_exit_3_and_message(tmp_path, monkeypatch):
    from toolkit.cli import app

    root = fake_proc(tmp_path, stat=None, entries=None, sysctls=False)
    real = snapmod.read_snapshot
    monkeypatch.setattr(snapmod, "read_snapshot",
                        lambda **kw: real(**{**kw, "proc_root": str(root), "caps": frozenset()}))
    r = CliRunner().invoke(app, ["conntrack", "--interval", "0"])
    assert r.exit_code == 3, r.output
    assert "NET_ADMIN" in r.output and "kubectl debug --profile=netadmin" in r.output


def test_cli_without_net_admin_still_reports(tmp_path, monkeypatch):
    from toolkit.cli import app

    root = fake_proc(tmp_path)
    real = snapmod.read_snapshot
    monkeypatch.setattr(snapmod, "read_snapshot",
                        lambda **kw: real(**{**kw, "proc_root": str(root), "caps": frozenset(), "netns": NODE_NS}))
    r = CliRunner().invoke(app, ["conntrack", "--interval", "0", "-o", "json"])
    assert r.exit_code in (0, 1), r.output
    doc = json.loads(r.output)
    assert doc["counters_source"] == "procfs" and doc["net_admin"] is False
    assert doc["counters"]["insert_failed"]["total"] == 0x11 + 0x0E


def test_dump_is_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(snapmod, "MAX_SCAN", 5)
    s = read_snapshot(proc_root=str(fake_proc(tmp_path)), caps=ALL, netlink=Recorded, netns=POD_NS)
    assert s.entries_truncated and s.entries_scanned == 6 and len(s.entries) <= 5


def test_help_does_not_import_pyroute2():
    import subprocess
    import sys

    code = ("import sys, toolkit.cli as c\n"
            "try:\n  c.app(['conntrack', '--help'])\nexcept SystemExit: pass\n"
            "assert 'pyroute2' not in sys.modules and 'dns.message' not in sys.modules, 'heavy import'\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=Path(__file__).resolve().parents[2])
    assert p.returncode == 0, p.stderr
