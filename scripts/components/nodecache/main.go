// The DNS engine of NodeLocal DNSCache's node-cache 1.26.4, for the lab.
//
// node-cache (k8s.io/dns, cmd/node-cache) is CoreDNS run with a fixed set of plugins, plus a
// wrapper that sets up a link-local interface and iptables NOTRACK rules and renders its
// Corefile from the kube-dns ConfigMap. k8s.io/dns is not served by the Go module proxy that
// these machines reach (every version and pseudo-version of k8s.io/dns and of
// github.com/kubernetes/dns answers 403), so the lab builds this instead: the CoreDNS release
// that node-cache 1.26.4's go.mod requires (v1.11.3) with exactly the plugins node-cache's
// main.go imports, and nothing else (no kubernetes plugin, as in node-cache). The wrapper's
// networking is done by the lab (tests/lab: the address on lo, the NOTRACK rules), as
// node-cache does with -setupinterface=false.
package main

import (
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/bufsize"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/debug"
	_ "github.com/coredns/coredns/plugin/dns64"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/hosts"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/metrics"
	_ "github.com/coredns/coredns/plugin/pprof"
	_ "github.com/coredns/coredns/plugin/reload"
	_ "github.com/coredns/coredns/plugin/rewrite"
	_ "github.com/coredns/coredns/plugin/template"
	_ "github.com/coredns/coredns/plugin/trace"
	_ "github.com/coredns/coredns/plugin/whoami"
)

func main() { coremain.Run() }
