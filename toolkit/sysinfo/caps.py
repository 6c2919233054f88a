"""Which Linux capabilities this process has: CapEff of /proc/self/status.

Tiny on purpose (other gatherers ask "may I?" before trying): ``has_cap("NET_ADMIN")``,
``effective_caps()``. Names are accepted with or without the ``CAP_`` prefix and returned
without it (``NET_ADMIN``, ``NET_RAW``). Unreadable status means "no capabilities known".
"""

from __future__ import annotations

# include/uapi/linux/capability.h, bit number -> name (without CAP_).
CAP_NAMES = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
    "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
    "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
    "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
    "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
    "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
)

STATUS_PATH = "/proc/self/status"


def capeff_mask(status_path: str = STATUS_PATH) -> int | None:
    """The CapEff bit mask, or None when the status file cannot be read."""
    try:
        with open(status_path, encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("CapEff:"):
                    return int(line.split(":", 1)[1].strip(), 16)
    except (OSError, ValueError):
        return None
    return None


def caps_from_mask(mask: int) -> frozenset[str]:
    """The capability names (without ``CAP_``) whose bits are set in ``mask``."""
    return frozenset(name for bit, name in enumerate(CAP_NAMES) if mask >> bit & 1)


def effective_caps(status_path: str = STATUS_PATH) -> frozenset[str]:
    """This process's effective capabilities; empty when the status file cannot be read."""
    mask = capeff_mask(status_path)
    return frozenset() if mask is None else caps_from_mask(mask)


def normalize(name: str) -> str:
    """A capability name as CAP_NAMES spells it: upper case, without ``CAP_``."""
    name = name.strip().upper()
    return name[4:] if name.startswith("CAP_") else name


def has_cap(name: str, status_path: str = STATUS_PATH) -> bool:
    """Whether the capability ``name`` (with or without ``CAP_``) is effective."""
    return normalize(name) in effective_caps(status_path)
