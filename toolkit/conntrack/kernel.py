"""The running kernel and which conntrack race fixes it carries, judged by its version.

Upstream versions only: distribution kernels backport fixes (Ubuntu took 4e35c1cb9460 into
4.15 via LP#1836816), so "absent" means "not in the upstream release this version is based
on", never proof. Versions we could not pin down exactly are marked ``certain=False``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class RaceFix:
    """An upstream conntrack fix for the insert race, and the first release carrying it."""

    commit: str
    title: str
    since: tuple[int, int]  # first upstream release carrying it (major, minor)
    since_text: str  # how sure we are, in words
    certain: bool
    what: str


RACE_FIXES: tuple[RaceFix, ...] = (
    RaceFix(commit="ed07d9a021df", title="netfilter: nf_conntrack: resolve clash for matching conntracks",
            since=(4, 19), since_text="4.19", certain=True,
            what="race 1: two packets of one flow insert identical entries; the loser is merged, not dropped"),
    RaceFix(commit="4e35c1cb9460", title="netfilter: nf_nat: skip nat clash resolution for same-origin entries",
            since=(5, 0), since_text="5.0", certain=True,
            what="race 2: the other packet was confirmed first with a different reply tuple"),
    RaceFix(commit="6a757c07e51f", title="netfilter: conntrack: allow insertion of clashing entries",
            since=(5, 6), since_text="5.6 or 5.7 (uncertain; check `git describe --contains 6a757c07e51f`)",
            certain=False,
            what="race 3: DNAT of the two packets to different backends (-m statistic); the loser "
            "is inserted reply-only with a 1 s timeout instead of being dropped"),
    RaceFix(commit="bc92470413f3", title="netfilter: conntrack: add clash resolution stat counter",
            since=(5, 9), since_text="about 5.9 (uncertain); the procfs column is named clashres from 5.10",
            certain=False,
            what="counter clash_resolve (clashres): clashes the kernel resolved without a drop"),
    RaceFix(commit="8af79d3edb5f", title="netfilter: nfnetlink_queue: remove old clash resolution logic",
            since=(6, 12),
            since_text="6.12 (net fixes tree, Oct 2024; likely, not verified; stable backports may exist)",
            certain=False,
            what="packets queued to userspace (NFQUEUE, e.g. network-policy agents) still raced "
            "(netfilter bugzilla 1766); kube-network-policies PR #95 works around it"),
)


@dataclass(frozen=True)
class FixStatus:
    """One race fix as judged for the running kernel: present, absent, or unsure (None)."""

    commit: str
    what: str
    since: str
    certain: bool
    present: bool | None  # None: version unknown, or too close to an uncertain boundary


@dataclass(frozen=True)
class KernelInfo:
    """The running kernel's release and the status of each race fix."""

    release: str  # /proc/sys/kernel/osrelease
    version: tuple[int, int, int] | None
    fixes: tuple[FixStatus, ...]

    @property
    def missing(self) -> tuple[FixStatus, ...]:
        """The fixes this kernel's upstream version predates."""
        return tuple(f for f in self.fixes if f.present is False)


def parse_version(release: str) -> tuple[int, int, int] | None:
    """(major, minor, patch) of a release string such as "6.1.0-18-amd64"."""
    m = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", release.strip())
    if not m:
        return None
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


def assess(release: str) -> KernelInfo:
    """Which race fixes a kernel of this release carries, by upstream version."""
    version = parse_version(release)
    out = []
    for fix in RACE_FIXES:
        if version is None:
            present = None
        else:
            mm = version[:2]
            if mm >= fix.since:
                present = True
                # An uncertain boundary: one minor release either side is "unknown".
                if not fix.certain and mm == fix.since:
                    present = None
            else:
                present = False
                if not fix.certain and (mm[0], mm[1] + 1) == fix.since:
                    present = None
        out.append(FixStatus(commit=fix.commit, what=fix.what, since=fix.since_text, certain=fix.certain,
                             present=present))
    return KernelInfo(release=release.strip(), version=version, fixes=tuple(out))


def read_kernel(path: str = "/proc/sys/kernel/osrelease") -> KernelInfo:
    """The running kernel (its osrelease, else Python's idea of it), assessed."""
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            release = fh.read().strip()
    except OSError:
        import platform

        release = platform.release()
    return assess(release)
