"""Corefile parser and sources: the seed ConfigMaps, the CoreDNS corpus, syntax details."""
import json
import os
from pathlib import Path

import pytest

from toolkit.corefile.parser import MAX_DEPTH, CorefileError, normalize_address, parse_corefile
from toolkit.corefile.source import load_all, load_corefiles
from toolkit.errors import EXIT_CANNOT_OBSERVE, InputFileError


def shared_dir() -> Path:
    here = Path(__file__).resolve().parents[2] / ".." / "shared"
    if here.is_dir():
        return here.resolve()
    env = os.environ.get("PODTRIAGE_SHARED")
    if env and Path(env).is_dir():
        return Path(env)
    pytest.fail("../shared (or PODTRIAGE_SHARED) not available: the seed ConfigMaps and the "
                "CoreDNS corpus live there", pytrace=False)


SEED_COREDNS = "seed/coredns-configmap.yaml"
SEED_NODELOCAL = "seed/nodelocaldns-configmap.yaml"

# The corpus's Go-test Corefiles that were cut short where the extraction removed a Go format
# verb (`%s`, `%d` ... ended the literal): each one has an unclosed '{' or quote. CoreDNS never
# saw them in this form; they must fail with CorefileError and nothing else.
TRUNCATED_TEST_COREFILES = {
    "136-test-test-acl-autopath-test-go.Corefile", "137-test-test-auto-test-go.Corefile",
    "138-test-test-auto-test-go.Corefile", "139-test-test-auto-test-go.Corefile",
    "141-test-test-cache-test-go.Corefile", "142-test-test-cache-test-go.Corefile",
    "143-test-test-cache-test-go.Corefile", "144-test-test-cache-test-go.Corefile",
    "145-test-test-cache-test-go.Corefile", "146-test-test-cache-test-go.Corefile",
    "149-test-test-ds-file-test-go.Corefile", "151-test-test-erratic-autopath-test-go.Corefile",
    "152-test-test-erratic-autopath-test-go.Corefile",
    "153-test-test-erratic-autopath-test-go.Corefile",
    "157-test-test-file-cname-proxy-test-go.Corefile",
    "158-test-test-file-cname-proxy-test-go.Corefile",
    "159-test-test-file-dangling-cname-test-go.Corefile", "160-test-test-file-loop-test-go.Corefile",
    "161-test-test-file-reload-test-go.Corefile", "162-test-test-file-serve-test-go.Corefile",
    "163-test-test-file-serve-test-go.Corefile", "164-test-test-file-srv-additional-test-go.Corefile",
    "165-test-test-file-upstream-test-go.Corefile", "166-test-test-file-upstream-test-go.Corefile",
    "167-test-test-file-upstream-test-go.Corefile", "168-test-test-file-upstream-test-go.Corefile",
    "169-test-test-file-xfr-test-go.Corefile", "180-test-test-metrics-test-go.Corefile",
    "181-test-test-metrics-test-go.Corefile", "185-test-test-plugin-dnssec-test-go.Corefile",
    "186-test-test-proxy-test-go.Corefile", "187-test-test-proxy-test-go.Corefile",
    "192-test-test-reload-test-go.Corefile", "193-test-test-reload-test-go.Corefile",
    "194-test-test-reload-test-go.Corefile", "195-test-test-reload-test-go.Corefile",
    "198-test-test-secondary-test-go.Corefile", "199-test-test-secondary-test-go.Corefile",
    "200-test-test-secondary-test-go.Corefile", "202-test-test-secondary-test-go.Corefile",
    "203-test-test-secondary-test-go.Corefile", "204-test-test-secondary-test-go.Corefile",
    "216-test-test-tsig-test-go.Corefile", "221-test-test-wildcard-test-go.Corefile",
}


def _truncated(text: str) -> bool:
    opens = text.count("{") - text.count("{$")
    return opens > text.count("}") or text.count('"') % 2 == 1


def test_seed_coredns_configmap_parses_with_file_lines():
    [cf] = load_corefiles(str(shared_dir() / SEED_COREDNS))
    assert cf.configmap == "kube-system/coredns" and cf.key == "Corefile"
    assert [b.keys for b in cf.blocks] == [(".:53",), ("xxx.xxx.xxx:53",)]
    root, stub = cf.blocks
    assert root.zones == (".",) and root.ports == (53,)
    assert stub.zones == ("xxx.xxx.xxx.",) and stub.line == 21
    k8s = root.get("kubernetes")[0]
    assert k8s.args == ("alpha.pm.k8s", "in-addr.arpa", "ip6.arpa")
    assert [(d.name, d.args) for d in k8s.block] == [
        ("pods", ("insecure",)), ("fallthrough", ("in-addr.arpa", "ip6.arpa")), ("ttl", ("30",))]
    fwd = stub.get("forward")[0]
    assert fwd.args == (".", "xxx.xxx.xxx.xxx")
    # Corefile line 24 is line 34 of the YAML file
    lines = (shared_dir() / SEED_COREDNS).read_text().splitlines()
    assert cf.file_line(fwd.line) == 34
    assert lines[34 - 1].strip() == "forward . xxx.xxx.xxx.xxx"


def test_seed_nodelocal_configmap_parses():
    [cf] = load_corefiles(str(shared_dir() / SEED_NODELOCAL))
    assert [b.zones for b in cf.blocks] == [("alpha.pm.k8s.",), ("in-addr.arpa.",),
                                            ("ip6.arpa.",), (".",)]
    assert all(b.bind == ("169.254.25.10",) for b in cf.blocks)
    ip6 = cf.blocks[2]
    assert [d.line for d in ip6.get("loop")] == [31, 32]
    assert [cf.file_line(d.line) for d in ip6.get("loop")] == [40, 41]
    assert cf.blocks[0].get("forward")[0].has("force_tcp")


def test_corpus_parses_or_fails_only_with_corefile_error():
    corpus = shared_dir() / "corpus" / "coredns-corefiles"
    files = sorted(corpus.glob("*.Corefile"))
    assert len(files) >= 200
    failed = set()
    for f in files:
        try:
            load_corefiles(str(f))
        except CorefileError:
            failed.add(f.name)
            assert _truncated(f.read_text()), f.name
    # every doc example parses; the test Corefiles fail only where the corpus truncated them
    assert not {n for n in failed if "-doc-" in n}
    assert failed == TRUNCATED_TEST_COREFILES
    for f in files:
        if "-test-" in f.name and f.name not in TRUNCATED_TEST_COREFILES:
            assert load_corefiles(str(f))


def test_syntax_zones_snippets_env_quotes_comments():
    text = '''# leading comment
(common) {
    errors
    log {args[0]}
}
dns://.:1053 tls://example.org:853, alpha.pm.k8s:53 {
    import common
    forward . tls://9.9.9.9 1.1.1.1:5353 {$UPSTREAM} { # inline comment
        tls_servername dns.quad9.net
        health_check 5s
    }
    template IN A "quoted arg with spaces" {
        answer "{{ .Name }} 60 IN A 127.0.0.1"
    }
}
10.0.0.0/8 0.0.10.in-addr.arpa {
    whoami
}
'''
    cf = parse_corefile(text)
    assert cf.snippets == ("common",)
    b0, b1 = cf.blocks
    assert [(a.transport, a.zone, a.port) for a in b0.addresses] == [
        ("dns", ".", 1053), ("tls", "example.org.", 853), ("dns", "alpha.pm.k8s.", 53)]
    assert b0.plugins == ("errors", "log", "forward", "template")
    log = b0.get("log")[0]
    # CoreDNS's caddy has no snippet arguments: {args[0]} stays as written.
    assert log.args == ("{args[0]}",) and log.imported_from == "common" and log.import_line == 7
    assert log.line == 4
    fwd = b0.get("forward")[0]
    assert fwd.args == (".", "tls://9.9.9.9", "1.1.1.1:5353", "{$UPSTREAM}")
    assert [d.name for d in fwd.block] == ["tls_servername", "health_check"]
    assert cf.env_placeholders == ("{$UPSTREAM}",)
    assert b0.get("template")[0].args == ("IN", "A", "quoted arg with spaces")
    assert b1.zones == ("10.in-addr.arpa.", "0.0.10.in-addr.arpa.")
    assert parse_corefile(text, env={"UPSTREAM": "8.8.8.8"}).blocks[0].get("forward")[0].args[-1] \
        == "8.8.8.8"


def test_reverse_cidr_non_octet_boundary_splits():
    zones = [a.zone for a in normalize_address("10.0.0.0/23")]
    assert zones == ["0.0.10.in-addr.arpa.", "1.0.10.in-addr.arpa."]
    assert normalize_address("10.0.0.0/27")[0].network == "10.0.0.0/27"
    assert normalize_address(".:xx")[0].problem


def test_braceless_single_block_and_continued_addresses():
    cf = parse_corefile("example.org\nwhoami\nlog\n")
    assert cf.blocks[0].plugins == ("whoami", "log")
    cf = parse_corefile("a.org,\n  b.org {\n whoami\n}\n")
    assert cf.blocks[0].zones == ("a.org.", "b.org.")


@pytest.mark.parametrize("text,line,column", [
    # the input ends in a block: caddy names its last token (dispenser.go EOFErr/SyntaxErr)
    (". {\n  whoami\n", 2, 3),
    (". {\n  forward . 1.1.1.1 {\n   force_tcp\n}\n", 4, 1),  # the '}' closes forward's block
    (". {\n  forward . 1.1.1.1 {\n   force_tcp\n", 3, 4),
    (". {\n  log \"unterminated\n}\n", 2, 7),
    ("}\n", 1, 1),
    (". {\n  {\n  }\n}\n", 2, 3),
    ("(s) {\n import s\n}\n. {\n import s\n}\n", 2, 2),
    ("a.org, {\n whoami\n}\n", 1, 8),
])
def test_errors_carry_line_and_column(text, line, column):
    with pytest.raises(CorefileError) as ei:
        parse_corefile(text)
    assert (ei.value.line, ei.value.column) == (line, column)
    assert isinstance(ei.value, InputFileError) and ei.value.exit_code == EXIT_CANNOT_OBSERVE


def test_error_maps_to_file_line_in_configmap(tmp_path):
    p = tmp_path / "cm.yaml"
    p.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: coredns\ndata:\n"
                 "  Corefile: |\n    .:53 {\n        forward . 1.1.1.1 {\n    }\n")
    with pytest.raises(CorefileError) as ei:
        load_corefiles(str(p))
    assert ei.value.line == 3 and ei.value.file_line == 9  # the last token, as caddy says
    assert "coredns" in ei.value.message


def test_depth_is_bounded():
    deep = ". {\n" + "a {\n" * (MAX_DEPTH + 5) + "}\n" * (MAX_DEPTH + 6)
    with pytest.raises(CorefileError, match="nested deeper"):
        parse_corefile(deep)
    ok = ". {\n" + "a {\n" * 10 + "}\n" * 11
    assert parse_corefile(ok).blocks[0].directives[0].name == "a"


def test_import_cycle_and_blowup_are_errors():
    with pytest.raises(CorefileError, match="cycle"):
        parse_corefile("(b) {\n import a\n}\n(a) {\n import b\n}\n. {\n import a\n}\n")
    text = "(s0) {\n whoami\n}\n"
    for i in range(1, 30):
        text += f"(s{i}) {{\n import s{i-1}\n import s{i-1}\n}}\n"
    text += ". {\n import s29\n}\n"
    with pytest.raises(CorefileError, match="expand|import depth"):
        parse_corefile(text)


def test_self_import_cycle():
    with pytest.raises(CorefileError, match="cycle"):
        parse_corefile("(a) {\n whoami\n}\n. {\n import a\n}\n".replace("whoami", "import a"))


def test_json_list_and_multi_document_sources(tmp_path):
    cm = {"apiVersion": "v1", "kind": "ConfigMap",
          "metadata": {"name": "coredns", "namespace": "kube-system"},
          "data": {"Corefile": ".:53 {\n  errors\n  forward . 8.8.8.8\n}\n", "other": "x"}}
    p = tmp_path / "cm.json"
    p.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": [cm, cm]}))
    cfs = load_corefiles(str(p))
    assert len(cfs) == 2 and cfs[0].line_offset is None and cfs[0].configmap == "kube-system/coredns"
    two = (shared_dir() / SEED_NODELOCAL).read_text() + "\n---\n" + \
        (shared_dir() / SEED_COREDNS).read_text()
    p2 = tmp_path / "two.yaml"
    p2.write_text(two)
    cfs = load_corefiles(str(p2))
    assert [c.configmap for c in cfs] == ["kube-system/nodelocaldns", "kube-system/coredns"]
    # the second document's lines still map to the combined file
    fwd = cfs[1].blocks[1].get("forward")[0]
    assert two.splitlines()[cfs[1].file_line(fwd.line) - 1].strip() == "forward . xxx.xxx.xxx.xxx"


def test_bad_inputs_are_input_file_errors(tmp_path):
    with pytest.raises(InputFileError, match="no such file"):
        load_corefiles(str(tmp_path / "missing"))
    p = tmp_path / "nocorefile.yaml"
    p.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  foo: bar\n")
    with pytest.raises(InputFileError, match="no Corefile"):
        load_corefiles(str(p))
    p.write_text("apiVersion: v1\nkind: [\n")
    with pytest.raises(InputFileError, match="YAML"):
        load_corefiles(str(p))
    with pytest.raises(InputFileError):
        load_all([str(tmp_path)])


def test_non_ascii_digits_are_no_port():
    # str.isdigit() is true for '¹', int() refuses it: found by the fuzz test.
    cf = parse_corefile("example.org:53\u00b9 {\n  whoami\n}\n")
    assert cf.blocks[0].addresses[0].problem == "invalid port '53\u00b9'"
    from toolkit.corefile.plugins.forward import parse_target
    assert parse_target("192.0.2.1:5\u00b3").kind == "not-an-address"


def test_import_takes_one_argument_as_coredns_caddy():
    import pytest

    from toolkit.corefile.document import CorefileError

    with pytest.raises(CorefileError) as e:
        parse_corefile("(s) {\n  whoami\n}\n.:53 {\n  import s 1.2.3.4\n}\n")
    assert e.value.line == 5 and "Import takes only one argument" in str(e.value)
