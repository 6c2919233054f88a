"""Which network namespace are we in? Best effort, never raises.

The inode of /proc/self/ns/net names the namespace. Whether it is the initial ("node")
namespace is known for certain only in some cases:

* kernels that give init_net the fixed inode PROC_NET_INIT_INO (0xEFFFFFF9, 4026531833;
  Linux 6.18 has it, earlier releases number init_net like any other namespace): that
  inode *is* the init namespace; on those kernels any other inode is not;
* when we share the initial PID namespace (inode PROC_PID_INIT_INO, 0xEFFFFFFC), PID 1 is the
  host's init, so comparing with /proc/1/ns/net settles it (`ip netns exec`, a node debug pod
  with hostPID).

Inside a pod (own PID namespace) PID 1 is the pod's pause or app process: sharing its netns
says nothing about the node, so ``is_init`` stays None unless the fixed inode tells.
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass

from toolkit.errors import best_effort

PROC_NET_INIT_INO = 0xEFFFFFF9
PROC_PID_INIT_INO = 0xEFFFFFFC
FIXED_NET_INO_SINCE = (6, 18)  # first release seen with PROC_NET_INIT_INO (earlier: unknown)


@dataclass(frozen=True)
class Interface:
    """A network interface of this namespace and its IPv4/IPv6 addresses."""

    name: str
    index: int
    addresses: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class NetnsInfo:
    """The network namespace this process is in, and whether it is the node's."""

    inode: int | None  # inode of /proc/self/ns/net
    is_init: bool | None  # True: the node's (initial) netns; None: cannot tell
    method: str  # how is_init was decided (or why not)
    pid1_inode: int | None = None  # /proc/1/ns/net when readable
    pid_ns_is_init: bool | None = None
    interfaces: tuple[Interface, ...] = ()
    hostname: str = ""

    __json_properties__ = ("label",)

    @property
    def label(self) -> str:
        """``net:[INODE]`` and what is known about it, for humans."""
        name = f"net:[{self.inode}]" if self.inode is not None else "net:[?]"
        if self.is_init is True:
            return f"{name} (the initial/node network namespace)"
        if self.is_init is False:
            return f"{name} (not the node's namespace: a pod or container netns)"
        return f"{name} (cannot tell whether this is the node's namespace)"


def _ns_inode(path: str) -> int | None:
    try:
        link = os.readlink(path)
    except OSError:
        return None
    m = re.search(r"\[(\d+)\]", link)
    return int(m.group(1)) if m else None


def _interfaces(limit: int = 64) -> tuple[Interface, ...]:
    try:
        pairs = socket.if_nameindex()
    except OSError:
        return ()
    addrs: dict[str, list[str]] = {}
    with best_effort(None, "interface addresses"):    # addresses are a nicety
        import psutil

        for name, items in psutil.net_if_addrs().items():
            for a in items:
                if a.family in (socket.AF_INET, socket.AF_INET6):
                    addrs.setdefault(name, []).append(a.address)
    return tuple(Interface(name=name, index=idx, addresses=tuple(addrs.get(name, ())))
                 for idx, name in sorted(pairs)[:limit])


def _kernel() -> tuple[int, int] | None:
    m = re.match(r"(\d+)\.(\d+)", os.uname().release)
    return (int(m.group(1)), int(m.group(2))) if m else None


def classify(inode: int | None, pid1_inode: int | None, pid_ns_inode: int | None,
             kernel: tuple[int, int] | None = None) -> tuple[bool | None, str]:
    """Pure decision (unit-tested): is ``inode`` the initial netns, and how do we know."""
    if inode is None:
        return None, "/proc/self/ns/net is unreadable"
    if inode == PROC_NET_INIT_INO:
        return True, "fixed inode of the initial network namespace"
    pid_ns_init = pid_ns_inode == PROC_PID_INIT_INO if pid_ns_inode is not None else None
    if pid_ns_init and pid1_inode is not None:
        if pid1_inode == inode:
            return True, "same netns as PID 1 of the initial PID namespace"
        else:
            return False, "differs from the netns of PID 1 (the host's init)"
    if pid1_inode == PROC_NET_INIT_INO or (kernel is not None and kernel >= FIXED_NET_INO_SINCE):
        # This kernel numbers init_net with the fixed inode, and we have another one.
        return False, (f"this kernel gives the initial netns the fixed inode {PROC_NET_INIT_INO}; "
                       "ours differs")
    if not pid_ns_init:
        return None, ("own PID namespace: PID 1 is not the host's init, so the node's netns "
                      "cannot be compared")
    return None, "/proc/1/ns/net is unreadable"


def current_netns() -> NetnsInfo:
    """This process's network namespace: its inode, interfaces, hostname, and whether it is
    the node's (``classify``)."""
    inode = _ns_inode("/proc/self/ns/net")
    pid1 = _ns_inode("/proc/1/ns/net")
    pidns = _ns_inode("/proc/self/ns/pid")
    is_init, method = classify(inode, pid1, pidns, _kernel())
    try:
        host = socket.gethostname()
    except OSError:
        host = ""
    return NetnsInfo(inode=inode, is_init=is_init, method=method, pid1_inode=pid1,
                     pid_ns_is_init=None if pidns is None else pidns == PROC_PID_INIT_INO,
                     interfaces=_interfaces(), hostname=host)
