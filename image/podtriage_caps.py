"""Raise the permitted capabilities to effective when the interpreter starts (image only).

The image's python binary carries the file capabilities NET_RAW and NET_ADMIN in its
*permitted* set only (`setcap cap_net_admin,cap_net_raw+p`). At exec the kernel grants a
non-root process (file permitted AND the pod's bounding set): nothing the pod did not grant,
and, because the file's effective bit is clear, exec never fails when the pod lacks one of
them. A program must then move what it was granted from permitted to effective itself: that
is this module, imported from podtriage-caps.pth by the site module.

Cost: one read of /proc/self/status; ctypes is imported only when there is something to
raise. Never raises an exception: on any failure podtriage runs without the capability and
names it (toolkit.errors.MissingCapability).
"""


def _raise_permitted_to_effective() -> None:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            fields = dict(line.split(":", 1) for line in fh if line.startswith("Cap"))
        permitted = int(fields["CapPrm"], 16)
        effective = int(fields["CapEff"], 16)
    except (OSError, KeyError, ValueError):
        return
    if not permitted & ~effective:
        return
    import ctypes

    class _Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class _Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        header = _Header(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3: two 32-bit words
        data = (_Data * 2)()
        if libc.capget(ctypes.byref(header), data) != 0:
            return
        for word in data:
            word.effective = word.permitted
        libc.capset(ctypes.byref(header), data)
    except (OSError, AttributeError):
        return


_raise_permitted_to_effective()
