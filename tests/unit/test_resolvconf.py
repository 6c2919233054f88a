"""resolv.conf parsing and glibc search order (expected values checked against glibc 2.36)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings, strategies as st

from toolkit.errors import InputFileError
from toolkit.model import Severity, Verdict
from toolkit.sysinfo.resolvconf import (
    ResolvConf, inet_aton_exact, load_resolv_conf, parse_resolv_conf, per_server_timeouts,
    queries_per_lookup, search_candidates, timeout_candidates, worst_case_seconds,
)

SEED = ("nameserver 169.254.25.10\n"
        "search wxwork.svc.alpha.pm.k8s svc.alpha.pm.k8s alpha.pm.k8s\n"
        "options ndots:5\n")


def codes(conf):
    return [f.code for f in conf.findings]


def finding(conf, code):
    return next(f for f in conf.findings if f.code == code)


def test_seed_candidates_queries_and_spof():
    conf = parse_resolv_conf(SEED)
    assert conf.nameservers == ("169.254.25.10",)
    assert conf.search == ("wxwork.svc.alpha.pm.k8s", "svc.alpha.pm.k8s", "alpha.pm.k8s")
    assert conf.ndots == 5 and conf.nodelocal_only
    cands = search_candidates("api.corp.example", conf)
    assert cands == ("api.corp.example.wxwork.svc.alpha.pm.k8s.", "api.corp.example.svc.alpha.pm.k8s.",
                     "api.corp.example.alpha.pm.k8s.", "api.corp.example.")
    assert queries_per_lookup(conf, len(cands)) == 8
    spof = finding(conf, "nodelocal-single-nameserver")
    assert spof.severity is Severity.WARNING and spof.verdict is None and spof.remedy
    amp = finding(conf, "ndots-search-amplification")
    assert amp.data["queries"] == 8 and "ndots:2" in amp.remedy


def test_trailing_dot_only_the_name():
    conf = parse_resolv_conf(SEED)
    assert search_candidates("api.corp.example.", conf) == ("api.corp.example.",)


def test_ndots_boundary_as_is_first():
    conf = parse_resolv_conf("nameserver 10.0.0.10\nsearch a.example b.example\noptions ndots:2\n")
    # 2 dots == ndots:2 -> as-is first
    assert search_candidates("x.y.z", conf) == ("x.y.z.", "x.y.z.a.example.", "x.y.z.b.example.")
    assert search_candidates("x.y", conf) == ("x.y.a.example.", "x.y.b.example.", "x.y.")   # 1 < 2
    assert search_candidates("x", conf) == ("x.a.example.", "x.b.example.", "x.")


def test_case_kept_and_bad_names_not_sent():
    conf = parse_resolv_conf("search a.example\n")
    assert search_candidates("Api.Corp", conf) == ("Api.Corp.", "Api.Corp.a.example.")
    for bad in ("-x", "x y", "*.x", "x..y", ".x", "", "10.0.0.1", "::1"):
        assert search_candidates(bad, conf) == ()
    assert search_candidates("a_b", conf) == ("a_b.a.example.", "a_b.")


def test_root_in_search_and_no_tld_query():
    conf = parse_resolv_conf("search a.example .\n")
    assert search_candidates("x", conf) == ("x.a.example.", "x.")
    assert search_candidates("x.y", conf) == ("x.y.", "x.y.a.example.", "x.y.")   # glibc asks twice
    conf = parse_resolv_conf("search a.example\noptions no-tld-query\n")
    assert search_candidates("x", conf) == ("x.a.example.",)
    assert search_candidates("x.y", conf) == ("x.y.", "x.y.a.example.")
    assert search_candidates("x", parse_resolv_conf("options no-tld-query\n")) == ("x.",)


def test_domain_vs_search_last_wins():
    conf = parse_resolv_conf("search a b\ndomain c d\n")
    assert conf.search == ("c",) and "search-overridden" in codes(conf)
    conf = parse_resolv_conf("domain c d\nsearch a. .b . \n")
    assert conf.search == ("a", "b", ".")
    assert parse_resolv_conf("search x\nsearch\nsearch   \n").search == ("x",)


def test_four_nameservers_and_forms():
    conf = parse_resolv_conf("nameserver 10.0.0.1\nnameserver 10.0.0.2\nnameserver fe80::1%eth0\n"
                             "nameserver 10.0.0.4\nnameserver 10.0.0.1#x\n")
    assert conf.nameservers == ("10.0.0.1", "10.0.0.2", "fe80::1%eth0")
    assert conf.ignored_nameservers[0] == "10.0.0.4"
    assert {"nameserver-beyond-maxns", "nameserver-unparsable"} <= set(codes(conf))
    odd = parse_resolv_conf("nameserver 010.0.0.1\nnameserver 10.1\nnameserver 0x0a000001\n")
    assert odd.nameservers == ("8.0.0.1", "10.0.0.1", "10.0.0.1")
    assert "nameserver-noncanonical" in codes(odd) and "nameserver-duplicate" in codes(odd)
    assert inet_aton_exact("1.2.3") == "1.2.0.3" and inet_aton_exact("1.2.3.4.5") is None
    assert inet_aton_exact("256.1.1.1") is None and inet_aton_exact("1.2.3.4abc") is None


def test_options_clamping_and_atoi():
    conf = parse_resolv_conf("options ndots:20 timeout:31 attempts:99\n")
    assert (conf.ndots, conf.timeout, conf.attempts) == (15, 30, 5)
    assert "option-clamped" in codes(conf)
    conf = parse_resolv_conf("options ndots:-1 timeout:0\n")
    assert conf.ndots == 15 and conf.timeout == 0          # 4-bit field; timeout 0 -> 1 s per try
    conf = parse_resolv_conf("options ndots:abc ndots: 3\n")
    assert conf.ndots == 3 and "option-bad-value" in codes(conf)
    conf = parse_resolv_conf("options ndots:3\noptions timeout:2\n")
    assert (conf.ndots, conf.timeout) == (3, 2)


def test_attempts_zero_sends_nothing():
    conf = parse_resolv_conf("nameserver 10.0.0.10\noptions attempts:0\n")
    f = finding(conf, "attempts-zero")
    assert f.verdict is Verdict.DNS_UNAVAILABLE
    assert search_candidates("x", conf) == ()


def test_unknown_prefix_and_no_effect_options():
    conf = parse_resolv_conf("nameserver 10.0.0.10\noptions rotatexyz single-request-reopen inet6 "
                             "no-aaaa trust-ad frobnicate edns0 use-vc no_tld_query\n")
    assert conf.rotate and conf.single_request_reopen and not conf.single_request
    assert conf.no_aaaa and conf.trust_ad and conf.edns0 and conf.use_vc and conf.no_tld_query
    assert {"option-prefix-match", "option-no-effect", "option-unknown"} <= set(codes(conf))
    assert finding(conf, "option-unknown").data["options"] == ["frobnicate"]
    assert conf.options[0] == "rotatexyz"
    assert queries_per_lookup(conf, 3) == 3


def test_env_localdomain_and_res_options():
    env = {"LOCALDOMAIN": "x.example y.example", "RES_OPTIONS": "ndots:3 rotate"}
    conf = parse_resolv_conf("search a b\noptions ndots:7 attempts:4\n", env=env)
    assert conf.search == ("x.example", "y.example")
    assert conf.ndots == 3 and conf.rotate and conf.attempts == 4
    assert {"localdomain-env", "res-options-env"} <= set(codes(conf))
    assert parse_resolv_conf("search a\n", env={"LOCALDOMAIN": ""}).search == (".",)
    assert parse_resolv_conf("search a\n", env=None).search == ("a",)


def test_keywords_must_start_line():
    conf = parse_resolv_conf("  nameserver 1.1.1.1\nNAMESERVER 2.2.2.2\nnameserver\t3.3.3.3\n"
                             "lookup file bind\nsearch\n# nameserver 9.9.9.9\n; x\n")
    assert conf.nameservers == ("3.3.3.3",)
    f = finding(conf, "malformed-line")
    assert f.severity is Severity.WARNING and f.data["lines"] == [1, 2, 4, 5]


def test_crlf_breaks_nameservers():
    conf = parse_resolv_conf("nameserver 1.1.1.1\r\nsearch a.b\r\n")
    assert conf.implicit_nameserver and conf.nameservers == ("127.0.0.1",)
    assert {"crlf-line-endings", "no-nameserver"} <= set(codes(conf))
    assert conf.search == ("a.b\r",)


def test_empty_file():
    conf = parse_resolv_conf("")
    assert conf.nameservers == ("127.0.0.1",) and conf.search_from_hostname
    nf = finding(conf, "no-nameserver")
    assert nf.verdict is Verdict.DNS_UNAVAILABLE and nf.severity is Severity.WARNING
    assert "search-from-hostname" in codes(conf)


def test_search_too_long_for_older_resolvers():
    conf = parse_resolv_conf("search " + " ".join(f"d{i}.example" for i in range(8)) + "\n")
    assert len(conf.search) == 8 and "search-list-long" in codes(conf)


def test_timeouts_follow_glibc_send_dg():
    one = parse_resolv_conf(SEED)
    assert per_server_timeouts(one) == (5,)
    assert worst_case_seconds(one, 2) == 20.0
    assert timeout_candidates("api.corp.example", one) == ("api.corp.example.wxwork.svc.alpha.pm.k8s.",
                                                           "api.corp.example.")
    three = parse_resolv_conf("nameserver 1.1.1.1\nnameserver 2.2.2.2\nnameserver 3.3.3.3\n")
    assert per_server_timeouts(three) == (5, 3, 6)
    assert worst_case_seconds(three, 1) == 28.0
    assert worst_case_seconds(parse_resolv_conf("options timeout:0\n"), 1) == 2.0


def test_load_missing_binary_huge(tmp_path):
    missing = load_resolv_conf(str(tmp_path / "nope"))
    assert missing.nameservers == ("127.0.0.1",)
    assert codes(missing)[0] == "resolv-conf-missing"
    with pytest.raises(InputFileError):
        load_resolv_conf(str(tmp_path))

    rnd = random.Random(7)
    blob = bytes(rnd.randrange(256) for _ in range(200_000)) + b"\0\nnameserver 10.9.9.9\n"
    p = tmp_path / "bin"
    p.write_bytes(blob)
    conf = load_resolv_conf(str(p))
    assert "10.9.9.9" in conf.nameservers or conf.ignored_nameservers
    assert finding(conf, "file-binary").severity is Severity.CRITICAL

    huge = tmp_path / "huge"
    huge.write_bytes(b"nameserver 10.0.0.1\n" + b"search a.example b.example\n" * 150_000
                     + b"garbage line here\n" * 50_000)
    # How fast: scripts/benchmarks/resolvconf_huge.py (a speed target, not behaviour).
    conf = load_resolv_conf(str(huge))
    assert conf.nameservers == ("10.0.0.1",)
    assert finding(conf, "file-huge").severity is Severity.CRITICAL
    mal = finding(conf, "malformed-line")
    assert mal.data["count"] == 50_000 and len(mal.evidence) <= 21


def test_lead_constructor_defaults():
    conf = ResolvConf(path="/x", nameservers=())
    assert conf.search == () and conf.ignored_nameservers == () and not conf.nodelocal_only
    assert search_candidates("a.b", conf) == ("a.b.",)


def test_rotate_with_nodelocal():
    conf = parse_resolv_conf("nameserver 169.254.20.10\nnameserver 10.233.0.3\noptions rotate\n")
    assert "rotate-bypasses-nodelocal" in codes(conf) and not conf.nodelocal_only


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_parse_never_raises(text):
    conf = parse_resolv_conf(text)
    assert 1 <= len(conf.nameservers) <= 3
    search_candidates("api.corp.example", conf)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["nameserver ", "search ", "domain ", "options ", "sortlist ",
                                 "ndots:", "timeout:", "attempts:", "rotate", "1.2.3.4", "::1",
                                 "%", " ", "\t", "\r", "\n", "\0", "#", ";", ".", "a", "-", "9"]),
                max_size=60).map("".join),
       st.text(alphabet="ab.-_\\9", max_size=12))
def test_keyword_soup_never_raises(text, name):
    conf = parse_resolv_conf(text, env={"RES_OPTIONS": text[:40], "LOCALDOMAIN": text[:20]})
    for fqdn in search_candidates(name, conf):
        assert fqdn.endswith(".")
