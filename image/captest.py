"""Evidence for the capability choice (README.md "Capabilities").
Usage (root, from a scratch directory): python3 image/captest.py localhost/podtriage:dev

 the capability choice: run the image's rootfs with runc directly, with the
process capabilities Kubernetes (containerd/CRI) gives a non-root container: bounding =
effective = permitted = the container's caps, NO ambient set, noNewPrivileges from
allowPrivilegeEscalation=false. Variants of the interpreter's file capabilities."""
import json, os, shutil, struct, subprocess, sys
PROBE = 'import socket, sys\nst = {k: v.strip() for k, v in (l.split(":", 1) for l in open("/proc/self/status") if l.startswith(("Cap", "NoNewPrivs")))}\nres = []\nfor name, fam, typ, proto in (("raw-icmp", socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP),\n                              ("packet", socket.AF_PACKET, socket.SOCK_RAW, 0)):\n    try:\n        socket.socket(fam, typ, proto).close(); res.append(name + "=ok")\n    except OSError as e:\n        res.append(name + "=" + e.strerror)\nprint("Prm", st["CapPrm"][-4:], "Eff", st["CapEff"][-4:], "Bnd", st["CapBnd"][-5:], "Amb", st["CapAmb"][-4:], "NNP", st["NoNewPrivs"], *res)\n'
IMG = sys.argv[1]
here = os.path.abspath(".")
mnt = subprocess.run(["podman", "image", "mount", IMG], capture_output=True, text=True, check=True).stdout.strip()
DEFAULT = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
           "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
           "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]
CONFIGS = {
    "netadmin (default caps + NET_ADMIN,NET_RAW)": (DEFAULT + ["CAP_NET_ADMIN"], False),
    "netadmin + allowPrivilegeEscalation=false": (DEFAULT + ["CAP_NET_ADMIN"], True),
    "default caps (NET_RAW, no NET_ADMIN)": (DEFAULT, False),
    "restricted (drop ALL, no_new_privs)": ([], True),
}
PY = os.path.realpath(mnt + "/usr/bin/python3").replace(mnt, "")
def fcaps(effective):
    magic = 0x02000000 | (1 if effective else 0)
    return struct.pack("<IIIII", magic, (1 << 12) | (1 << 13), 0, 0, 0)
VARIANTS = {"no file caps": None, "cap_net_admin,cap_net_raw+p (image)": fcaps(False),
            "cap_net_admin,cap_net_raw+ep": fcaps(True)}
os.makedirs("rootfs0", exist_ok=True)
subprocess.run(["cp", "-a", "--preserve=all", mnt + "/.", "rootfs0/"], check=True)
open("rootfs0/probe.py", "w").write(PROBE)
subprocess.run(["runc", "spec"], cwd="rootfs0/..", check=True) if not os.path.exists("config.json") else None
spec = json.load(open("config.json"))
for vname, xattr in VARIANTS.items():
    target = "rootfs0" + PY
    try:
        os.removexattr(target, "security.capability")
    except OSError:
        pass
    if xattr:
        os.setxattr(target, "security.capability", xattr)
    print(f"## interpreter {vname}")
    for cname, (caps, nnp) in CONFIGS.items():
        s = json.loads(json.dumps(spec))
        s["root"] = {"path": here + "/rootfs0", "readonly": True}
        s["process"]["terminal"] = False
        s["process"]["user"] = {"uid": 65532, "gid": 65532}
        s["process"]["args"] = ["/opt/podtriage/bin/python", "/probe.py"]
        s["process"]["env"] = ["PATH=/opt/podtriage/bin:/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE=1"]
        s["process"]["noNewPrivileges"] = nnp
        s["process"]["capabilities"] = {"bounding": caps, "effective": caps, "permitted": caps}
        s["linux"].pop("uidMappings", None)
        os.makedirs("bundle", exist_ok=True)
        json.dump(s, open("bundle/config.json", "w"))
        p = subprocess.run(["runc", "run", "--bundle", "bundle", "pt-captest"], capture_output=True, text=True, timeout=60)
        out = (p.stdout.strip() or p.stderr.strip()).splitlines()[-1:] or [""]
        print(f"  {cname:46} rc={p.returncode} {out[0][:160]}")
        subprocess.run(["runc", "delete", "-f", "pt-captest"], capture_output=True)
subprocess.run(["podman", "image", "unmount", IMG], capture_output=True)
