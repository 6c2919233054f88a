"""Kubernetes for the kubectl plugin tests, around the lab's real control plane
(tests/lab/controlplane.py): a real kubectl v1.34 from PyPI (``kubectl``), a stdlib client of
the real API (``rest``), the kubelet stand-in (``kubelet``: the one part that cannot run
here) with its container runtime (``runtime``) and kubelet API (``kubeletapi``), the plugin's
runner, the audit log reader and test workloads (``labkube``), and a fake kubectl that
records its argv for the unit tests (``fakekubectl``)."""
