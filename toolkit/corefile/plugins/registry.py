"""Which module answers for which plugin name. A plugin not listed here (log, errors, health,
loop, bind...) does nothing to the name or the route of a query."""

from __future__ import annotations

from collections.abc import Mapping

from toolkit.corefile.plugins import (
    auto,
    cache,
    cloud,
    erratic,
    etcd,
    file,
    forward,
    hosts,
    k8s_external,
    kubernetes,
    nomad,
    rewrite,
    secondary,
    template,
    whoami,
)
from toolkit.corefile.plugins.base import Handler

HANDLERS: Mapping[str, Handler] = {
    "cache": cache.handler,
    "rewrite": rewrite.handler,
    "template": template.handler,
    "hosts": hosts.handler,
    "kubernetes": kubernetes.handler,
    "k8s_external": k8s_external.handler,
    "etcd": etcd.handler,
    "file": file.handler,
    "auto": auto.handler,
    "secondary": secondary.handler,
    "route53": cloud.handler,
    "azure": cloud.handler,
    "clouddns": cloud.handler,
    "nomad": nomad.handler,
    "whoami": whoami.handler,
    "erratic": erratic.handler,
    "forward": forward.handler,
    "grpc": forward.handler,
    "proxy": forward.handler,
}
