"""File input for the resolver files: bytes read with a bound (``read_input``), decoded the
way glibc sees them with findings for binary and oversized content (``decode_text``), and
``load_resolv_conf``, which adds the findings for a missing or empty resolv.conf. Also the
environment variables glibc's resolver reads (``environ_subset``).

``decode_text`` and ``read_input`` serve /etc/hosts and nsswitch.conf too
(``toolkit.sysinfo.hosts``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from toolkit.errors import InputFileError
from toolkit.model import Finding, Severity, Verdict
from toolkit.sysinfo.resolvconf.findings import finding
from toolkit.sysinfo.resolvconf.lint import NO_NAMESERVER
from toolkit.sysinfo.resolvconf.parse import parse_resolv_conf
from toolkit.sysinfo.resolvconf.record import ResolvConf

MAX_READ_BYTES = 1 << 20          # more than this is not a resolv.conf anyone wrote
HARD_READ_LIMIT = 32 << 20        # never read more than this into memory


def decode_text(data: bytes, path: str, what: str = "resolv.conf") -> tuple[str, list[Finding]]:
    """Bytes -> text glibc-style (lines and NULs are handled by the parsers), with findings
    for binary content and oversized files. Never raises."""
    findings: list[Finding] = []
    if len(data) > MAX_READ_BYTES:
        size = f"{len(data) / 1048576:.1f} MiB" + (" or more (only that much was read)"
                                                    if len(data) >= HARD_READ_LIMIT else "")
        findings.append(finding(
            "file-huge", Severity.CRITICAL,
            f"{path} is {size}: not a {what} anyone wrote; glibc still "
            "reads it line by line on every (re)load",
            f"restore a normal {what} (a few lines); find what writes to it",
            verdict=Verdict.INDETERMINATE, bytes=len(data)))
    sample = data[:65536]
    nul = data.count(b"\0")
    text = data.decode("utf-8", errors="replace")
    bad = text.count("\ufffd")
    controls = sum(1 for b in sample if b < 32 and b not in (9, 10, 13))
    if nul or bad > 0.05 * max(len(sample), 1) or controls > 0.05 * max(len(sample), 1):
        findings.append(finding(
            "file-binary", Severity.CRITICAL,
            f"{path} is not a text file ({nul} NUL byte(s), {bad} undecodable byte(s)); "
            "shown is what glibc can still read from it",
            f"restore {what} from a known good copy; check what overwrote it",
            verdict=Verdict.INDETERMINATE, nul_bytes=nul, undecodable=bad))
    elif bad:
        findings.append(finding(
            "file-not-utf8", Severity.WARNING, f"{path} contains {bad} byte(s) that are not UTF-8",
            "keep the file ASCII"))
    return text, findings


def read_input(path: str, limit: int = HARD_READ_LIMIT) -> bytes | None:
    """The file's bytes (at most ``limit``), None when it does not exist; InputFileError
    when it exists but cannot be read (``toolkit.inputs``: FIFOs and pipes bounded by the
    deadline, directories/sockets/block devices refused)."""
    from toolkit import inputs

    try:
        return inputs.read_bytes(path, what="a file", limit=limit, truncate=True)
    except InputFileError as exc:
        if exc.problem == "no such file":
            return None
        raise


def load_resolv_conf(path: str = "/etc/resolv.conf",
                     env: Mapping[str, str] | None = None) -> ResolvConf:
    """Read and parse ``path``. A missing file is what glibc sees as defaults (nameserver
    127.0.0.1, hostname domain) and is reported as a finding; an unreadable one raises
    InputFileError."""
    data = read_input(path)
    if data is None:
        conf = parse_resolv_conf("", path, env)
        missing = finding(
            "resolv-conf-missing", Severity.WARNING,
            f"{path} does not exist: glibc uses nameserver 127.0.0.1 and the hostname's domain",
            "mount or write a resolv.conf (in Kubernetes the kubelet provides one; check dnsPolicy)",
            verdict=Verdict.DNS_UNAVAILABLE)
        rest = tuple(f for f in conf.findings if f.code != NO_NAMESERVER)
        return conf.with_findings((missing, *rest))
    text, extra = decode_text(data, path)
    conf = parse_resolv_conf(text, path, env)
    if not text.strip(" \t\r\n"):
        extra.append(finding("resolv-conf-empty", Severity.WARNING,
                             f"{path} is empty: glibc uses nameserver 127.0.0.1 and the hostname's domain",
                             "write a resolv.conf with at least one nameserver line"))
    return conf.with_findings((*extra, *conf.findings))


def environ_subset(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment variables glibc's resolver reads, from ``environ`` (default: ours)."""
    environ = os.environ if environ is None else environ
    return {k: environ[k] for k in ("LOCALDOMAIN", "RES_OPTIONS", "HOSTALIASES") if k in environ}
