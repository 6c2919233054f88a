"""Shared pytest fixtures: the network-namespace lab (see tests/lab/)."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from tests.lab import Lab  # noqa: E402



def pytest_configure(config):
    config.addinivalue_line(
        "markers", "lab: needs root and builds network namespaces with the real stack (CoreDNS, "
        "node-cache, etcd, kube-apiserver, kube-controller-manager, kube-proxy, DNS servers)")


def _lab_unavailable():
    if os.geteuid() != 0:
        return "the lab needs root (ip netns, nft, DNS servers on port 53)"
    missing = [b for b in ("ip", "nft", "iptables", "iptables-restore", "conntrack", "openssl",
                           "unbound", "dnsmasq", "named", "dig", "curl")
               if shutil.which(b) is None and not Path("/usr/sbin", b).exists()]
    if missing:
        return "lab binaries missing: %s" % ", ".join(missing)
    from tests.lab import components

    unbuilt = [c.key for c in components.COMPONENTS if not components.binary_path(c).exists()]
    if unbuilt:
        return "real components not built (scripts/setup builds them): %s" % ", ".join(unbuilt)
    try:
        p = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10)
    except Exception as e:  # noqa: BLE001
        return "ip netns unavailable: %s" % e
    if p.returncode != 0:
        return "ip netns unavailable: %s" % p.stderr.strip()
    return None


def _require_lab(fixture: str) -> None:
    """Fail (CI: root, Debian) when the lab cannot be built; skip only with PT_ALLOW_LAB_SKIP=1."""
    why = _lab_unavailable()
    if why:
        if os.environ.get("PT_ALLOW_LAB_SKIP") == "1":
            pytest.skip(why)
        pytest.fail("%s fixture: %s (set PT_ALLOW_LAB_SKIP=1 to skip instead)" % (fixture, why),
                    pytrace=False)


@pytest.fixture(scope="session")
def lab():
    _require_lab("lab")
    prefix = os.environ.get("PT_LAB_PREFIX") or "pt%d" % (os.getpid() % 100000)
    lab = Lab(prefix)
    try:
        lab.up()
        yield lab
    finally:
        lab.down()


@pytest.fixture
def clean_lab(lab):
    try:
        yield lab
    finally:
        lab.clear_faults()


@pytest.fixture(scope="session")
def lab6():
    """The dual-stack lab (Lab(ipv6=True)): its own namespaces, beside `lab`."""
    _require_lab("lab6")
    prefix = os.environ.get("PT_LAB6_PREFIX") or "sx%d" % (os.getpid() % 100000)
    lab = Lab(prefix, ipv6=True)
    try:
        lab.up()
        yield lab
    finally:
        lab.down()


@pytest.fixture
def clean_lab6(lab6):
    try:
        yield lab6
    finally:
        lab6.clear_faults()
