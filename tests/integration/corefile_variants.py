"""Generated Corefiles for the differential suite: each modelled plugin with and without
fallthrough, rewrite chains with stop/continue, several forward stanzas with except, import
and snippets, hosts/template/file zones, more specific zones, ports and binds, and configs
CoreDNS refuses. Deterministic (a seeded Random); every variant listens on its own ports
(PORT0 + 8*i ...) so that many run in one CoreDNS process.

A variant's queries ask every traced name: inside and outside each zone, A, AAAA, PTR, SRV.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

UPSTREAMS = [f"10.60.0.{i}" for i in range(1, 31)]
PORT0 = 20000
TYPES = ("A", "AAAA", "PTR", "SRV")


@dataclass
class Variant:
    """A Corefile, the files it reads (relative to CoreDNS's working directory), and the
    questions to ask: (name, qtype, server address, port)."""

    key: str
    text: str
    port: int
    queries: list[tuple[str, str, str, int]] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)
    kube: bool = False
    refused: bool = False  # built to be refused (it runs alone)

    def ask(self, names: list[str], types: tuple[str, ...] = TYPES, server: str = "127.0.0.1",
            port: int | None = None) -> None:
        for n in names:
            for t in types:
                self.queries.append((n, t, server, self.port if port is None else port))


def _up(rng: random.Random, k: int = 1) -> list[str]:
    return rng.sample(UPSTREAMS, k)


def _fwd(rng: random.Random, frm: str = ".") -> str:
    return f"forward {frm} {' '.join(_up(rng, rng.choice((1, 2))))}"


def _ptr(ip: str) -> str:
    return ".".join(reversed(ip.split("."))) + ".in-addr.arpa"


def hosts(rng: random.Random, i: int) -> Variant:
    port = PORT0 + 8 * i
    zone = rng.choice(["example.org", ".", "example.org example.net"])
    fall = rng.choice(["", "fallthrough", "fallthrough example.org", "fallthrough nothere.example"])
    ip1, ip2 = f"10.77.{i % 250}.1", f"10.77.{i % 250}.2"
    use_file = rng.random() < 0.4
    arg = ""
    files = {}
    if use_file:
        fname = f"hosts-{i}"
        files[fname] = f"{ip2} file{i}.example.org\nfd77::{i:x} file{i}.example.org\n"
        arg = fname + ("" if zone == "." else " " + zone)
    elif zone != "." or rng.random() < 0.5:
        arg = "/etc/hosts" + ("" if zone == "." else " " + zone)
    body = [f"    {ip1} h{i}.example.org", f"    {ip1} h{i}.example.net"]
    if rng.random() < 0.5:
        body.append("    no_reverse")
    if fall:
        body.append("    " + fall)
    after = rng.choice(["", _fwd(rng), "whoami"])
    text = (f".:{port} {{\n  hosts {arg} {{\n" + "\n".join(body) + "\n  }\n"
            + (f"  {after}\n" if after else "") + "}\n")
    v = Variant(f"hosts-{i}", text, port, files=files)
    v.ask([f"h{i}.example.org", f"h{i}.example.net", f"x{i}.example.org", f"file{i}.example.org",
           "etchosts.example.org", f"y{i}.other.test", _ptr(ip1), _ptr(ip2), _ptr("10.77.255.1"),
           _ptr("10.1.2.3")], ("A", "AAAA", "PTR", "SRV"))
    return v


def template(rng: random.Random, i: int) -> Variant:
    port = PORT0 + 8 * i
    blocks = []
    for k in range(rng.choice((1, 2))):
        cls = rng.choice(["IN", "ANY"])
        typ = rng.choice(["A", "ANY", "AAAA"])
        zone = rng.choice(["", "example.org", "t.example.org"])
        match = rng.choice(["", f"^a{k}[.]", "(^|[.])b[0-9]+[.]", "^nomatch[.]"])
        rcode = rng.choice(["", "", "NXDOMAIN", "SERVFAIL"])
        fall = rng.choice(["", "fallthrough"])
        ans4 = f'answer "{{{{ .Name }}}} 60 IN A 10.88.{i % 250}.{k + 1}"'
        ans6 = f'answer "{{{{ .Name }}}} 60 IN AAAA fd88::{i:x}:{k + 1}"'
        ans = ans6 if typ == "AAAA" else ans4 if typ == "A" else ""
        lines = [f"  template {cls} {typ} {zone} {{".replace("  {", " {")]
        lines += [f"    match {match}"] if match else []
        lines += [f"    {ans}"] if ans else []
        lines += [f"    rcode {rcode}"] if rcode else []
        lines += [f"    {fall}"] if fall else []
        blocks.append("\n".join(lines) + "\n  }")
    after = rng.choice(["", _fwd(rng)])
    text = f".:{port} {{\n" + "\n".join(blocks) + "\n" + (f"  {after}\n" if after else "") + "}\n"
    v = Variant(f"template-{i}", text, port)
    v.ask(["a0.example.org", "a1.t.example.org", "b12.example.org", "c.example.org",
           "a0.other.test", "b7.other.test"], ("A", "AAAA", "SRV"))
    return v


def zonefile(rng: random.Random, i: int) -> Variant:
    port = PORT0 + 8 * i
    zone = f"z{i}.example"
    fname = f"db.{zone}"
    files = {fname: (f"$ORIGIN {zone}.\n@ 3600 IN SOA ns.{zone}. admin.{zone}. 1 7200 3600 1209600 60\n"
                     f"@ IN NS ns.{zone}.\nns IN A 10.99.{i % 250}.53\nwww IN A 10.99.{i % 250}.1\n"
                     f"www IN AAAA fd99::{i:x}:1\nmail IN MX 10 www\n"
                     f"a.deep IN A 10.99.{i % 250}.2\nsub IN NS ns.other.test.\n")}
    fall = rng.choice(["", "fallthrough"]) if rng.random() < 0.3 else ""
    where = rng.choice(["block", "arg"])
    after = rng.choice(["", _fwd(rng), "whoami"])
    fl = f"  file {fname}" + (f" {zone}" if where == "arg" else "")
    fl += " {\n    fallthrough\n  }" if fall else ""
    key = zone if where == "block" else "."
    text = f"{key}:{port} {{\n{fl}\n" + (f"  {after}\n" if after else "") + "}\n"
    v = Variant(f"file-{i}", text, port, files=files, refused=False)
    v.ask([f"www.{zone}", f"mail.{zone}", f"nope.{zone}", f"deep.{zone}", f"x.sub.{zone}",
           f"w{i}.other.test"], ("A", "AAAA", "SRV"))
    return v


_REWRITES = [
    "rewrite {mode}name exact r{i}.example.org t{i}.example.net",
    "rewrite {mode}name prefix r{i} p{i}",
    "rewrite {mode}name suffix .example.org .example.com",
    "rewrite {mode}name substring example examp1e",
    "rewrite {mode}name regex (.*)[.]r{i}[.]example[.]org {{1}}.g{i}.example.net",
    "rewrite {mode}name regex ^r{i}[.](.*) {{1}}",
    "rewrite {mode}type AAAA A",
]


def rewrite(rng: random.Random, i: int) -> Variant:
    port = PORT0 + 8 * i
    rules = rng.sample(_REWRITES, rng.choice((1, 2, 3)))
    lines = []
    for r in rules:
        mode = rng.choice(["", "", "continue ", "stop "])
        lines.append("  " + r.format(mode=mode, i=i))
    cache = rng.choice(["", "  cache 30"])
    text = f".:{port} {{\n" + "\n".join(lines) + "\n" + (cache + "\n" if cache else "") + \
        f"  {_fwd(rng)}\n}}\n"
    v = Variant(f"rewrite-{i}", text, port)
    v.ask([f"r{i}.example.org", f"x.r{i}.example.org", f"r{i}.other.test", "plain.example.org",
           "other.test"], ("A", "AAAA"))
    return v


def forwards(rng: random.Random, i: int) -> Variant:
    port = PORT0 + 8 * i
    stanzas = []
    for frm in rng.sample(["example.org", "a.example.org", ".", "example.net", "in-addr.arpa"],
                          rng.choice((2, 3))):
        exc = rng.choice(["", "", "b.example.org", "example.net a.example.org"])
        stanzas.append(f"  forward {frm} {' '.join(_up(rng, rng.choice((1, 2))))}"
                       + (f" {{\n    except {exc}\n  }}" if exc else ""))
    text = f".:{port} {{\n" + "\n".join(stanzas) + "\n}\n"
    v = Variant(f"forwards-{i}", text, port)
    v.ask(["x.example.org", "x.a.example.org", "x.b.example.org", "x.example.net", "x.other.test",
           _ptr("10.1.2.3")], ("A", "PTR"))
    return v


def zones(rng: random.Random, i: int) -> Variant:
    port = PORT0 + 8 * i
    keys = rng.sample([f"example.org:{port}", f"a.example.org:{port}", f".:{port}",
                       f"example.org:{port + 1}", f"10.1.0.0/16:{port}", f"b.a.example.org:{port}"],
                      rng.choice((2, 3, 4)))
    blocks = []
    for k in keys:
        body = rng.choice([_fwd(rng), "whoami", "log", ""])
        blocks.append(f"{k} {{\n" + (f"  {body}\n" if body else "") + "}")
    v = Variant(f"zones-{i}", "\n".join(blocks) + "\n", port)
    names = ["x.example.org", "x.a.example.org", "x.b.a.example.org", "x.other.test", _ptr("10.1.2.3"),
             _ptr("10.2.2.3")]
    v.ask(names, ("A", "PTR"))
    v.ask(names[:2], ("A",), port=port + 1)
    return v


def binds(rng: random.Random, i: int) -> Variant:
    port = PORT0 + 8 * i
    a, b = f"127.0.{i % 250}.2", f"127.0.{i % 250}.3"
    blocks = [f".:{port} {{\n  bind {a}\n  {_fwd(rng)}\n}}",
              f".:{port} {{\n  bind {b}\n  {rng.choice(['whoami', _fwd(rng)])}\n}}"]
    if rng.random() < 0.5:
        blocks.append(f"example.org:{port} {{\n  bind {b}\n  {_fwd(rng)}\n}}")
    v = Variant(f"binds-{i}", "\n".join(blocks) + "\n", port)
    for srv in (a, b):
        v.ask(["x.example.org", "x.other.test"], ("A",), server=srv)
    return v


def snippets(rng: random.Random, i: int) -> Variant:
    port = PORT0 + 8 * i
    u1, u2 = _up(rng, 2)
    text = (f"(fw{i}) {{\n  forward . {u1}\n}}\n(common{i}) {{\n  errors\n}}\n"
            f"example.org:{port} {{\n  import common{i}\n  import fw{i}\n}}\n"
            f"example.net:{port} {{\n  import common{i}\n  import fw{i}\n}}\n"
            f".:{port} {{\n  forward . {u2}\n}}\n")
    v = Variant(f"snippets-{i}", text, port)
    v.ask(["x.example.org", "x.example.net", "x.other.test"], ("A", "SRV"))
    return v


def kubernetes(rng: random.Random, i: int) -> Variant:
    port = PORT0 + 8 * i
    fall = rng.choice(["", "    fallthrough in-addr.arpa ip6.arpa", "    fallthrough"])
    zones_ = rng.choice(["cluster.local in-addr.arpa ip6.arpa", "cluster.local", ""])
    key = rng.choice([".", "cluster.local"])
    text = (f"{key}:{port} {{\n  kubernetes {zones_} {{\n{fall}\n  }}\n  {_fwd(rng)}\n}}\n"
            .replace("\n\n", "\n"))
    v = Variant(f"kubernetes-{i}", text, port, kube=True)
    v.ask(["svc.ns.svc.cluster.local", "x.other.test", _ptr("10.1.2.3")], ("A", "PTR"))
    return v


_REFUSED = [
    ".:{p} {{\n  hosts {{\n    1.2.3.4 a.example\n  }}\n  hosts\n  forward . {u}\n}}\n",
    ".:{p} {{\n  kubernetes cluster.local {{\n    upstream\n  }}\n}}\n",
    ".:{p} {{\n  kubernets cluster.local\n  forward . {u}\n}}\n",
    ".:{p} {{\n  whoami\n}}\n.:{p} {{\n  whoami\n}}\n",
    ".:{p} {{\n  loop\n  forward . {u}\n  loop\n}}\n",
    ".:{p} {{\n  cache\n  cache 30\n  forward . {u}\n}}\n",
    ".:{p} {{\n  rewrite name regex (a)[.]b {{1}}{{2}}.c\n  forward . {u}\n}}\n",
    ".:{p} {{\n  rewrite name regex (?=a)x b\n  forward . {u}\n}}\n",
    ".:{p} {{\n  hosts {{\n    fallthrough\n    1.2.3.4 a.example\n  }}\n}}\n",
    ".:{p} {{\n  forward . {u} {{\n    bogus_option\n  }}\n}}\n",
    ".:{p} {{\n  template IN A {{\n    match ^a(?!b)\n  }}\n}}\n",
    ".:{p} {{\n  proxy . {u}\n}}\n",
    ".:{p} {{\n  file db.missing {{\n    fallthrough\n  }}\n}}\n",
    ".:{p} {{\n  nomad\n  forward . {u}\n}}\n",
    ".:{p} {{\n  errors\n  errors\n  whoami\n}}\n",
    ".:{p} {{\n  whoami\n  rewrite bogus a b\n}}\n",
    "(s{p}) {{\n  forward . {{args[0]}}\n}}\n.:{p} {{\n  import s{p} {u}\n}}\n",
    ".:{p} {{\n  file db.missing {{\n    no_such_thing\n  }}\n}}\n",
]


def refused(rng: random.Random, i: int) -> Variant:
    port = PORT0 + 8 * i
    text = _REFUSED[i % len(_REFUSED)].format(p=port, u=_up(rng)[0])
    return Variant(f"refused-{i}", text, port, refused=True,
                   files={"db.missing": "$ORIGIN example.\n@ IN SOA ns admin 1 2 3 4 5\n"})


# kubernetes once in 20: each of its instances waits 5 s for the API at start (unsynced).
FAMILIES = (hosts, template, zonefile, rewrite, forwards, zones, binds, snippets, kubernetes, refused,
            hosts, template, zonefile, rewrite, forwards, zones, binds, snippets, rewrite, refused)


def variants(count: int, seed: int = 21) -> list[Variant]:
    """COUNT variants, the families in turn."""
    rng = random.Random(seed)
    return [FAMILIES[i % len(FAMILIES)](rng, i) for i in range(count)]
