"""CLI: python3 -m tests.lab [--prefix P] up|down|status|versions|kubeconfig|kubectl ARGS|exec NS CMD..."""
import argparse
import json
import os
import sys

from . import Lab, LabError, NAMESPACES


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="scripts/lab", description="podtriage network-namespace lab")
    ap.add_argument("--prefix", default=None,
                    help="namespace prefix (default: $PT_LAB_PREFIX or 'pt')")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("up", help="build the lab (idempotent) and wait until servers answer")
    sub.add_parser("down", help="remove the lab")
    st = sub.add_parser("status", help="namespaces and which servers answer")
    st.add_argument("--json", action="store_true")
    sub.add_parser("clear-faults", help="undo all fault switches")
    cu = sub.add_parser("cluster-up", help="the lab plus a second node with its own NodeLocal "
                                           "cache and pods pod1b, pod2a, pod2b (tests/lab/cluster.py)")
    cu.add_argument("--stale", metavar="NAME=ADDRESS",
                    help="node2's cache serves ADDRESS for NAME (a stale answer)")
    sub.add_parser("cluster-down", help="remove the second node, then the lab")
    sub.add_parser("versions", help="the real components the lab runs, with their versions "
                                    "(tests/lab/components.py; built by scripts/setup), and what "
                                    "the running lab's binaries and API server report")
    sub.add_parser("kubeconfig", help="print the path of the lab's admin kubeconfig (its server "
                                      "exists only inside the lab: run kubectl in a lab namespace)")
    kc = sub.add_parser("kubectl", help="run kubectl v1.34 in the node namespace with the admin "
                                        "kubeconfig (discovery cache in the run dir)")
    kc.add_argument("args", nargs=argparse.REMAINDER)
    ex = sub.add_parser("exec", help="run a command in a lab namespace")
    ex.add_argument("ns", help="one of: %s" % ", ".join(NAMESPACES))
    ex.add_argument("command", nargs=argparse.REMAINDER)
    a = ap.parse_args(argv)
    if a.cmd == "versions":
        from . import components

        rc = components.main(["versions"])
        if os.geteuid() == 0:
            lab = Lab(a.prefix)
            if lab.is_up():
                print("\nrunning in lab %s:" % lab.prefix)
                for name, version in lab.running_versions().items():
                    print("  %-24s %s" % (name, version))
        return rc
    if a.cmd == "kubeconfig":
        lab = Lab(a.prefix)
        if not lab.kubeconfig().exists():
            print("scripts/lab: lab %s is not up (scripts/lab up)" % lab.prefix, file=sys.stderr)
            return 1
        print(lab.kubeconfig())
        return 0
    if os.geteuid() != 0:
        print("scripts/lab: must run as root (ip netns)", file=sys.stderr)
        return 3
    try:
        lab = Lab(a.prefix)
        if a.cmd == "up":
            lab.up()
            print("lab %s up (run dir %s; kubeconfig %s)" % (lab.prefix, lab.rundir, lab.kubeconfig()))
            if lab.timings:
                print("  started in %.1f s (API server ready after %.1f s, control plane and "
                      "node %.1f s)" % (lab.timings["lab"], lab.timings["apiserver_ready"],
                                       lab.timings["control_plane"]))
        elif a.cmd == "down":
            lab.down()
            print("lab %s down" % lab.prefix)
        elif a.cmd == "clear-faults":
            lab.clear_faults()
        elif a.cmd == "status":
            s = lab.status()
            if a.json:
                print(json.dumps(s, indent=1))
            else:
                print("lab %s (run dir %s)" % (s["prefix"], s["rundir"]))
                for n, ok in s["namespaces"].items():
                    print("  netns  %-22s %s" % (n, "present" if ok else "MISSING"))
                for n, v in s["servers"].items():
                    print("  server %-22s pid=%-8s %s" % (n, v["pid"] or "-",
                                                           "answers" if v["answers"] else "NOT answering"))
                for n, v in s["kubernetes"].items():
                    print("  kube   %-22s pid=%-8s %s" % (n, v["pid"] or "-",
                                                           "running" if v["pid"] else "NOT running"))
                f = s["faults"]
                if f and (f["fw"] or f["rcode"] or f["stopped"] or f["app_down"]):
                    print("  faults %s" % json.dumps(f, sort_keys=True))
            return 0 if all(s["namespaces"].values()) else 1
        elif a.cmd == "cluster-up":
            from .cluster import ClusterLab

            cl = ClusterLab(lab).up()
            if a.stale:
                name, sep, addr = a.stale.partition("=")
                if not sep or not name or not addr:
                    ap.error("--stale takes NAME=ADDRESS")
                cl.stale_cache(name, addr)
            print("lab %s: two nodes up (run dir %s)" % (lab.prefix, lab.rundir))
        elif a.cmd == "cluster-down":
            from .cluster import ClusterLab

            ClusterLab(lab).down()
            lab.down()
            print("lab %s down" % lab.prefix)
        elif a.cmd == "kubectl":
            args = a.args[1:] if a.args[:1] == ["--"] else a.args
            p = lab.kubectl(*args, capture_output=False, timeout=3600)
            return p.returncode
        elif a.cmd == "exec":
            if not a.command:
                ap.error("exec needs a command")
            cmd = a.command[1:] if a.command[0] == "--" else a.command
            from .cluster import EXTRA, ClusterLab

            ns = ClusterLab(lab).ns(a.ns) if a.ns in EXTRA else lab.ns(a.ns)
            # a kubectl run here keeps its discovery cache in the lab (removed with it), not
            # in ~/.kube/cache where every lab would share the key 10.0.10.10_6443
            os.environ.setdefault("KUBECACHEDIR", str(lab.rundir / "kube" / "cache"))
            os.execvp("ip", ["ip", "netns", "exec", ns, *cmd])
    except LabError as e:
        print("scripts/lab: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
