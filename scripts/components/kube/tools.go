//go:build tools

// Package kube pins the Kubernetes 1.34 servers the lab runs (kube-apiserver,
// kube-controller-manager, kube-proxy) and etcd: tests/lab/components.py builds each main
// package below with `go build`. k8s.io/kubernetes replaces its staging modules with
// ./staging/...; go.mod replaces each by the version published for the same release.
package kube

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
)
