"""Hostile-input benchmark (issues 10 and 23): wall time and peak RSS of podtriage on each
hostile fixture, beside `podtriage --version` (the cost of starting at all). Prints one JSON
line per fixture; exits 1 when a run exits 4, hangs, or passes its stated bound. Every
fixture states both bounds (a unit test of this file checks it). The overlapping-fragment
pcap is also measured against a pcap of as many plain DNS frames: the ratio of their CPU
times is printed last (issue 23 class 8b: bounded reassembly work per datagram).
Sends nothing: only `corefile lint|trace`, `resolvconf`, `merge` and `capture --read` run.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests import hostile as H  # noqa: E402

def _dup_corefile(n: int) -> str:
    return "".join(f"corp.example:53 {{\n    forward . 10.0.0.{i % 250 + 1}\n}}\n" for i in range(n))


def _documents(n: int) -> str:
    return "".join(json.dumps(H.small_document(i)) + "\n" for i in range(n))


def _env_bomb() -> str:
    return ". {\n" + " forward . {$A}{$A}{$A}{$A}{$A}{$A}{$A}{$A}\n" * 1000 + "}\n"


def _regex_bomb() -> str:
    return ". {\n    rewrite name regex ^([a-z.]|[a-z.]|[a-z.]|[a-z.])*!$ x.example.\n    forward . 10.0.0.1\n}\n"


def _deep_document() -> str:
    doc = H.small_document(0)
    doc["x"] = "@DEEP@"
    return json.dumps(doc).replace('"@DEEP@"', "[" * 3000 + "]" * 3000) + "\n"


def _deep_ext(path: Path) -> None:
    from toolkit.capture import synth as S
    from toolkit.capture.pcapio import write_pcap

    q = H.ipv6_ext_chain(9, H.udp6(40000, 53, S.dns_query(1, "deep.example.")))
    write_pcap(str(path), 101, ((1_700_000_000_000_000_000 + i * 1000, q) for i in range(20_000)))


class _pcap:  # noqa: N801 - a fixture maker, written like the content it stands for
    """A fixture written by a function (binary files)."""

    def __init__(self, make) -> None:  # noqa: ANN001
        self.make = make


# (name, argv, file content or None, wall bound s, RSS bound MB)
FIXTURES = [
    ("startup (--version)", ["--version"], None, 2, 60),
    ("deep YAML, 30k nested [ (60 KB)", ["corefile", "lint", "{f}"], H.deep_yaml(), 2, 100),
    ("billion laughs (9x9 aliases)", ["corefile", "lint", "{f}"], H.billion_laughs(), 2, 100),
    ("merge-key bomb (20 levels)", ["corefile", "lint", "{f}"], H.merge_key_bomb(), 2, 100),
    ("deep JSON, 100k nested [", ["corefile", "lint", "{f}"], H.deep_json(), 2, 100),
    ("List of 50k ConfigMaps with a Corefile (JSON)", ["corefile", "lint", "{f}"],
     H.configmap_list_json(50_000), 5, 400),
    ("List of 80k ConfigMaps without one (JSON, 3.6 MiB)", ["corefile", "lint", "{f}"],
     H.configmap_list_json(80_000, corefile=None), 8, 300),
    ("Corefile of 100k server blocks (4 MiB, at the cap)", ["corefile", "lint", "{f}"],
     H.huge_corefile(100_000)[: (4 << 20) - 64].rsplit("}", 1)[0] + "}\n", 30, 600),
    ("List over the YAML node budget (20k ConfigMaps)", ["corefile", "lint", "{f}"],
     H.configmap_list_yaml(20_000), 5, 250),
    ("List at the YAML node budget (13k ConfigMaps)", ["corefile", "lint", "{f}"],
     H.configmap_list_yaml(13_000), 10, 250),
    ("/dev/zero as Corefile", ["corefile", "lint", "/dev/zero"], None, 2, 100),
    ("/dev/zero as resolv.conf", ["resolvconf", "--file", "/dev/zero"], None, 5, 400),
    ("FIFO without writer, --deadline 1", ["corefile", "lint", "{fifo}", "--deadline", "1"], None, 2.5, 100),
    ("Corefile of 20k server blocks", ["corefile", "lint", "{f}"], H.huge_corefile(20_000), 10, 400),
    # --- issue 23 -------------------------------------------------------------------------
    ("700 blocks of one zone (class 4), --deadline 5", ["corefile", "lint", "{f}", "-o", "json", "--deadline", "5"],
     _dup_corefile(700), 2, 100),
    ("4,000 blocks of one zone (class 4), --deadline 5", ["corefile", "lint", "{f}", "-o", "json", "--deadline", "5"],
     _dup_corefile(4000), 4, 150),
    ("4,000 blocks of one zone, trace (class 4)", ["corefile", "trace", "a.corp.example.", "-c", "{f}",
                                                   "--deadline", "5"], _dup_corefile(4000), 4, 150),
    ("3,000 forwards then 3,000 rewrites: 9M order pairs (class 4)", ["corefile", "lint", "{f}", "-o", "json"],
     ". {\n" + "    forward . 10.0.0.1\n" * 3000 + "    rewrite name a.example b.example\n" * 3000 + "}\n", 3, 100),
    ("merge of 20,000 small documents, --deadline 5 (class 4)", ["merge", "{f}", "-o", "json", "--deadline", "5"],
     _documents(20_000), 7, 400),
    ("{$ENV} bomb: 8,000 placeholders x 100 KB (class 8c)",
     ["corefile", "lint", "{f}", "--env", "A=" + "a" * 100_000], _env_bomb(), 2, 100),
    ("rewrite regex bomb, trace (class 3)", ["corefile", "trace", "a" * 60 + ".example.", "-c", "{f}",
                                            "--deadline", "5"], _regex_bomb(), 6, 150),
    ("resolv.conf nameserver of 5,000 digits (class 5)", ["resolvconf", "--file", "{f}", "--name", "a.b"],
     "nameserver " + "9" * 5000 + "\nnameserver 10.0.0.1\n", 2, 100),
    ("merge: a document 3,000 arrays deep (class 2)", ["merge", "{f}", "-o", "json"],
     _deep_document(), 2, 100),
    ("IPv6 DNS behind 9 extension headers x 20,000 (class 8d)", ["capture", "--read", "{f}", "-o", "json"],
     _pcap(_deep_ext), 10, 150),
    ("overlapping IP fragments, 40 x 2,000, never complete (class 8b)", ["capture", "--read", "{f}", "-o", "json"],
     _pcap(lambda p: H.overlapping_fragments_pcap(p)), 10, 150),
    ("as many plain DNS frames (8b's baseline)", ["capture", "--read", "{f}", "-o", "json"],
     _pcap(lambda p: H.answered_pcap(p, 40_000)), 20, 150),
]


def main() -> int:
    bad = 0
    cpu: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as d:
        fifo = os.path.join(d, "fifo")
        os.mkfifo(fifo)
        for name, argv, content, wall_bound, rss_bound in FIXTURES:
            f = os.path.join(d, "input")
            if isinstance(content, _pcap):
                content.make(Path(f))
            elif content is not None:
                Path(f).write_text(content)
            args = [a.replace("{f}", f).replace("{fifo}", fifo) for a in argv]
            t0 = os.times()
            o = H.run_cli(args, timeout=120)
            t1 = os.times()
            cpu[name] = (t1.children_user + t1.children_system) - (t0.children_user + t0.children_system)
            ok = (not o.killed and o.code != 4 and o.wall_s <= wall_bound and o.maxrss_mb <= rss_bound)
            bad += not ok
            print(json.dumps({"fixture": name, "exit": o.code, "wall_s": round(o.wall_s, 2),
                              "peak_rss_mb": round(o.maxrss_mb), "bounds": [wall_bound, rss_bound],
                              "cpu_s": round(cpu[name], 2),
                              "ok": ok, "error": o.stderr.splitlines()[0][:100] if o.stderr else ""}))
    frag = [n for n in cpu if n.startswith("overlapping IP fragments")]
    base = [n for n in cpu if n.startswith("as many plain DNS frames")]
    if frag and base and cpu[base[0]] > 0:
        print(json.dumps({"ratio": "overlapping fragments / plain DNS frames, CPU",
                          "value": round(cpu[frag[0]] / cpu[base[0]], 2)}))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
