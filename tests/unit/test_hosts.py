"""/etc/hosts and nsswitch.conf hosts: parsing."""

from __future__ import annotations

from toolkit.sysinfo.hosts import load_hosts, load_nsswitch, parse_hosts, parse_nsswitch


def test_hosts_parse_and_lookup():
    h = parse_hosts("127.0.0.1 localhost\n10.1.1.1  Api.Corp.Example api # comment\n"
                    "::1 ip6-localhost\nnot-an-ip name\n10.2.2.2\n# only comment\n\n")
    assert [e.address for e in h.entries] == ["127.0.0.1", "10.1.1.1", "::1"]
    assert h.entries[1].names == ("Api.Corp.Example", "api") and h.entries[1].line == 2
    assert [e.line for e in h.lookup("api.corp.example.")] == [2]
    assert h.lookup("API") and not h.lookup("corp.example") and not h.lookup("")
    bad = next(f for f in h.findings if f.code == "hosts-malformed-line")
    assert bad.data["lines"] == [4, 5]


def test_hosts_binary_and_missing(tmp_path):
    p = tmp_path / "hosts"
    p.write_bytes(b"\0\xff\xfe" * 1000 + b"\n10.0.0.1 good\n")
    h = load_hosts(str(p))
    assert h.lookup("good") and any(f.code == "file-binary" for f in h.findings)
    m = load_hosts(str(tmp_path / "missing"))
    assert not m.exists and m.findings[0].code == "hosts-missing"


def test_nsswitch_hosts_line():
    n = parse_nsswitch("passwd: files\nhosts: files mdns4_minimal [NOTFOUND=return] dns myhostname\n")
    assert [s.name for s in n.sources] == ["files", "mdns4_minimal", "dns", "myhostname"]
    assert n.sources[1].criteria == ("NOTFOUND=return",)
    assert n.uses_dns and n.files_before_dns and not n.uses_resolved and n.mdns_minimal_return


def test_nsswitch_resolved_and_criteria():
    n = parse_nsswitch("hosts: resolve [!UNAVAIL=return] files dns\n")
    assert n.uses_resolved and not n.files_before_dns
    assert n.sources[0].action("NOTFOUND") == "return" and n.sources[0].action("UNAVAIL") == "continue"
    assert any(f.code == "nsswitch-resolve" for f in n.findings)


def test_nsswitch_default_and_errors(tmp_path):
    n = load_nsswitch(str(tmp_path / "none"))
    assert n.defaulted and n.described() == "dns [!UNAVAIL=return] files"
    assert n.uses_dns and not n.files_before_dns and n.findings[0].code == "nsswitch-missing"
    d = parse_nsswitch("# nothing\n")
    assert d.defaulted and d.findings[0].code == "nsswitch-no-hosts-line"
    bad = parse_nsswitch("hosts: files [BOGUS=x] dns [NOTFOUND=return\n")
    assert any(f.code == "nsswitch-malformed" for f in bad.findings)
    nodns = parse_nsswitch("hosts: files\n")
    assert not nodns.uses_dns and any(f.code == "nsswitch-no-dns" for f in nodns.findings)
