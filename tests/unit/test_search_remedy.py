"""The one remedy builder for an answer that belongs to another name (capture and diagnose)."""

from toolkit.sysinfo.resolvconf.remedies import in_cluster, search_candidate_remedy

SEARCH = ("shop.svc.cluster.local", "svc.cluster.local", "cluster.local", "corp.example")


def test_in_cluster_by_search_list_and_by_shape() -> None:
    assert in_cluster("shop.svc.cluster.local", SEARCH)
    assert not in_cluster("corp.example", SEARCH)
    assert not in_cluster("corp.example", ())  # a search list without a cluster domain
    assert in_cluster("shop.svc.k8s.test", None) and in_cluster("cluster.local", None)
    assert not in_cluster("corp.example", None)


def test_steps_in_order_and_the_node_domain_only_outside_the_cluster() -> None:
    r = search_candidate_remedy(name="api.corp.example", domain="corp.example", search=SEARCH, last="or X")
    assert r.startswith("1) write the name with a trailing dot") and "(api.corp.example.)" in r
    assert "2) or lower ndots" in r and 'value: "2"' in r
    assert "3) or remove corp.example from the node's search list" in r and r.endswith("4) or X")
    inside = search_candidate_remedy(name="api.corp.example", domain="shop.svc.cluster.local", search=SEARCH,
                                     last="or X")
    assert "kubelet --resolv-conf" not in inside and inside.endswith("3) or X")
    bare = search_candidate_remedy(name="backend", domain="corp.example", search=SEARCH, last="or X")
    assert "ndots" not in bare  # a single label: no ndots value helps


def test_capture_remedy_suggests_no_public_resolver() -> None:
    from toolkit.capture.othername import remedy
    from toolkit.capture.records import SearchAnswer
    a = SearchAnswer(name="www.example.org", candidate="www.example.org.corp.example", suffix="corp.example",
                     addresses=("10.1.2.3",), lookups=1, clients=("10.0.0.9",), first_ts=0.0, itself=(),
                     itself_nxdomain=0, cluster_shaped=False, learnt_suffix=False)
    r = remedy(a)
    assert "--reference <resolver outside the cluster>" in r and "8.8.8.8" not in r
