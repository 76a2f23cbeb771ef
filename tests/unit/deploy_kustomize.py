"""An in-process `kustomize build` of deploy/k8s, for the subset of kustomize it uses.

kubectl (which embeds kustomize) is not on every machine, so the tests render each kustomization
here too: resources (files and directories), components, `images`, and JSON 6902 patches with a
target (ops add, remove, replace, test; the allowKindChange/allowNameChange options). Anything
else in a kustomization raises Unsupported instead of being ignored, so the renderer cannot
silently diverge from kustomize; where kubectl exists, test_deploy_kustomize.py also checks that
both render the same objects.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from tests.unit.deploy_checks import load_documents

Object = dict[str, Any]
_KINDS = {
    "Kustomization": "kustomize.config.k8s.io/v1beta1",
    "Component": "kustomize.config.k8s.io/v1alpha1",
}
_FIELDS = {"apiVersion", "kind", "resources", "components", "images", "patches"}
_TARGET_FIELDS = {"group", "version", "kind", "name"}
_OPTIONS = {"allowKindChange", "allowNameChange"}


class Unsupported(Exception):
    """A kustomization uses a feature this renderer does not implement."""


class PatchFailed(Exception):
    """A JSON 6902 operation does not apply (kustomize fails the build on it too)."""


def build(directory: Path) -> list[Object]:
    """The objects `kustomize build directory` outputs (in no particular order)."""
    objects: list[Object] = []
    _apply(directory, objects, expect="Kustomization")
    return objects


def build_component(base: Path, component: Path) -> list[Object]:
    """`base` with only `component` on it: the component's own defaults, before any entry
    point patches them."""
    objects: list[Object] = []
    _apply(base, objects, expect="Kustomization")
    _apply(component, objects, expect="Component")
    return objects


def _apply(directory: Path, objects: list[Object], expect: str) -> None:
    kustomization = _load(directory, expect)
    for entry in kustomization.get("resources", []):
        path = (directory / entry).resolve()
        if path.is_dir():
            _apply(path, objects, expect="Kustomization")
        else:
            objects.extend(load_documents(path.read_text(encoding="utf-8")))
    # A component acts on everything accumulated so far (its parent's resources included).
    for entry in kustomization.get("components", []):
        _apply((directory / entry).resolve(), objects, expect="Component")
    for patch in kustomization.get("patches", []):
        _patch(directory, patch, objects)
    for image in kustomization.get("images", []):
        _set_image(image, objects)


def _load(directory: Path, expect: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((directory / "kustomization.yaml").read_text())
    if document.get("kind", "Kustomization") != expect:
        raise Unsupported(f"{directory}: a {document.get('kind')} where a {expect} belongs")
    if document.get("apiVersion") != _KINDS[expect]:
        raise Unsupported(f"{directory}: apiVersion {document.get('apiVersion')}")
    unknown = set(document) - _FIELDS
    if unknown:
        raise Unsupported(f"{directory}: {sorted(unknown)}")
    return document


def _patch(directory: Path, patch: dict[str, Any], objects: list[Object]) -> None:
    if set(patch) - {"path", "patch", "target", "options"} or "target" not in patch:
        raise Unsupported(f"{directory}: a patch without a target or with {sorted(patch)}")
    text = patch["patch"] if "patch" in patch else (directory / patch["path"]).read_text()
    operations = yaml.safe_load(text)
    if not isinstance(operations, list):
        raise Unsupported(f"{directory}: a strategic-merge patch (only JSON 6902 is rendered)")
    target, options = patch["target"], patch.get("options", {})
    if set(target) - _TARGET_FIELDS or set(options) - _OPTIONS:
        raise Unsupported(f"{directory}: target {target}, options {options}")
    matched = [i for i, obj in enumerate(objects) if _matches(obj, target)]
    if not matched:
        # kustomize ignores a patch that matches nothing; a typo in a target would then pass
        # unnoticed, so this renderer refuses it (and the kubectl comparison keeps it honest).
        raise PatchFailed(f"{directory}: no object matches {target}")
    for index in matched:
        before = objects[index]
        after = apply_json_patch(before, operations)
        # kustomize refuses these changes unless the patch's options allow them
        if after["kind"] != before["kind"] and not options.get("allowKindChange"):
            raise PatchFailed(f"{directory}: the patch changes the kind without allowKindChange")
        if after["metadata"]["name"] != before["metadata"]["name"] and not options.get(
            "allowNameChange"
        ):
            raise PatchFailed(f"{directory}: the patch changes the name without allowNameChange")
        objects[index] = after


def _matches(obj: Object, target: dict[str, str]) -> bool:
    group, _, version = obj["apiVersion"].rpartition("/")
    actual = {"group": group, "version": version, "kind": obj["kind"]}
    actual["name"] = obj["metadata"]["name"]
    return all(actual[key] == value for key, value in target.items())


def apply_json_patch(document: Object, operations: list[dict[str, Any]]) -> Object:
    """RFC 6902 add / remove / replace / test on a copy of `document`."""
    result = copy.deepcopy(document)
    for op in operations:
        parent, key = _locate(result, op["path"])
        name = op["op"]
        if name == "test":
            if _get(parent, key) != op["value"]:
                raise PatchFailed(f"test {op['path']}: {_get(parent, key)!r} != {op['value']!r}")
        elif name == "remove":
            _get(parent, key)  # must exist
            del parent[key]
        elif name == "replace":
            _get(parent, key)
            parent[key] = copy.deepcopy(op["value"])
        elif name == "add" and isinstance(parent, list):
            parent.insert(len(parent) if key == "-" else int(key), copy.deepcopy(op["value"]))
        elif name == "add":
            parent[key] = copy.deepcopy(op["value"])
        else:
            raise Unsupported(f"op {name}")
    return result


def _locate(document: Any, pointer: str) -> tuple[Any, Any]:
    if not pointer.startswith("/"):
        raise PatchFailed(f"not a JSON pointer: {pointer!r}")
    tokens = [t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]
    node = document
    for token in tokens[:-1]:
        node = _get(node, int(token) if isinstance(node, list) else token)
    last = tokens[-1]
    if isinstance(node, list) and last != "-":
        return node, int(last)
    return node, last


def _get(node: Any, key: Any) -> Any:
    try:
        return node[key]
    except (KeyError, IndexError, TypeError):
        raise PatchFailed(f"no {key!r} in {type(node).__name__}") from None


def _set_image(image: dict[str, str], objects: list[Object]) -> None:
    if set(image) - {"name", "newName", "newTag"}:
        raise Unsupported(f"images entry {image}")
    for container in _containers(objects):
        name, _, tag = container["image"].partition(":")
        if name == image["name"]:
            container["image"] = f"{image.get('newName', name)}:{image.get('newTag', tag)}"


def _containers(objects: list[Object]) -> Iterator[dict[str, Any]]:
    for obj in objects:
        pod = obj.get("spec", {}).get("template", {}).get("spec", {})
        yield from pod.get("containers", [])
        yield from pod.get("initContainers", [])


def kubectl() -> str | None:
    """A kubectl to render with: the one the dev dependencies ship (deploy_tools), else PATH's."""
    from tests.unit.deploy_tools import packaged_tool

    packaged = packaged_tool("kubectl")
    return str(packaged) if packaged else shutil.which("kubectl")


def kubectl_build(binary: str, directory: Path) -> list[Object]:
    """The objects `kubectl kustomize directory` outputs (offline: it reads files only)."""
    result = subprocess.run(
        [binary, "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise PatchFailed(result.stderr.strip())
    return load_documents(result.stdout)


def by_identity(objects: list[Object]) -> dict[tuple[str, str, str], Object]:
    """Objects keyed by (apiVersion, kind, name); a duplicate raises (kustomize refuses one)."""
    keyed: dict[tuple[str, str, str], Object] = {}
    for obj in objects:
        key = (obj["apiVersion"], obj["kind"], obj["metadata"]["name"])
        if key in keyed:
            raise PatchFailed(f"two objects {key}")
        keyed[key] = obj
    return keyed
