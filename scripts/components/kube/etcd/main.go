// etcd's server, from go.etcd.io/etcd/server/v3 at the release Kubernetes 1.34 requires
// (v3.6.4, as kubeadm 1.34 deploys it): the etcd command is etcdmain.Main, built here
// beside the Kubernetes servers so that both share one module graph.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
