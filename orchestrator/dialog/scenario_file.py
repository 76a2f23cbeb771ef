"""Reading a scenario file into a ScenarioSet.

A scenario file has a `default:` scenario and optional `lines: {<line_id>: {...}}` whose keys
override the default's (merged deeply: a line names only what differs; lists are replaced whole).
A scenario's `translations: {<language>: {...}}` give its texts in other languages the same way,
except that a list of mappings is merged item by item (`faq`, `collect.fields`: translate the
texts of each entry in its order, the rest is kept); every translation is a whole scenario of
its own, validated like the others.
Unknown keys are refused everywhere, and the error names the file, the key's path and the key
it was probably meant to be. `load_scenario(None)` loads the shipped `scenarios/default.yaml`.
"""

from __future__ import annotations

import difflib
import typing
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from orchestrator.dialog.scenario import ScenarioSet
from orchestrator.errors import ScenarioError

__all__ = ["load_scenario", "parse_scenario"]


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _merge_texts(base: Any, override: Any) -> Any:
    """A translation over its scenario: mappings deeply, lists of mappings item by item."""
    if isinstance(base, dict) and isinstance(override, dict):
        return {**base, **{k: _merge_texts(base.get(k), v) for k, v in override.items()}}
    if isinstance(base, list) and isinstance(override, list) and len(base) == len(override):
        return [_merge_texts(b, o) for b, o in zip(base, override, strict=True)]
    return override


def _languages(doc: dict[str, Any]) -> list[str]:
    own = str(doc.get("language") or "en")
    others = doc.get("translations") or {}
    return [own, *(str(lang) for lang in others if str(lang) != own)]


def _translated(doc: dict[str, Any], source: str, key: str) -> dict[str, dict[str, Any]]:
    """The scenario `doc` in each language its translations give (without translations)."""
    translations = doc.get("translations") or {}
    if not isinstance(translations, dict):
        raise ScenarioError(f"{source}: {key}.translations must be a mapping of languages")
    plain = {k: v for k, v in doc.items() if k != "translations"}
    variants: dict[str, dict[str, Any]] = {}
    for lang, texts in translations.items():
        if not isinstance(texts, dict):
            raise ScenarioError(f"{source}: {key}.translations.{lang} must be a mapping")
        variants[str(lang)] = {**_merge_texts(plain, texts), "language": str(lang)}
    return variants


def parse_scenario(document: Any, source: str = "<scenario>") -> ScenarioSet:
    """Validate a loaded YAML document into a ScenarioSet; ScenarioError names the bad path."""
    if not isinstance(document, dict) or "default" not in document:
        raise ScenarioError(f"{source}: the top level must be a mapping with a 'default' key")
    unknown = set(document) - {"default", "lines"}
    if unknown:
        raise ScenarioError(f"{source}: unknown top-level keys {sorted(unknown)}")
    default, lines = document["default"], document.get("lines") or {}
    if not isinstance(default, dict) or not isinstance(lines, dict):
        raise ScenarioError(f"{source}: 'default' and 'lines' must be mappings")
    merged: dict[str, Any] = {}
    for line_id, override in lines.items():
        if not isinstance(override, dict):
            raise ScenarioError(f"{source}: lines.{line_id} must be a mapping")
        merged[str(line_id)] = _merge(default, override)
    scenarios = {"default": default, **merged}
    variants = {key: _translated(doc, source, key) for key, doc in scenarios.items()}
    speaks = {key: _languages(doc) for key, doc in scenarios.items()}
    try:
        return ScenarioSet.model_validate(
            {
                "default": {**default, "languages": speaks["default"]},
                "lines": {k: {**doc, "languages": speaks[k]} for k, doc in merged.items()},
                "variants": {
                    key: {lang: {**doc, "languages": speaks[key]} for lang, doc in by.items()}
                    for key, by in variants.items()
                    if by
                },
            }
        )
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        # a misspelt key also makes its right spelling "missing": name the misspelling first
        first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
        where = ".".join(str(part) for part in first["loc"])
        raise ScenarioError(f"{source}: {where}: {first['msg']}{_did_you_mean(first)}") from exc


def _did_you_mean(error: Any) -> str:
    """For a key no model knows, the nearest one that some scenario model does."""
    if error["type"] != "extra_forbidden" or not error["loc"]:
        return ""
    known = _keys_of(ScenarioSet)
    near = difflib.get_close_matches(str(error["loc"][-1]), sorted(known), n=1)
    return f"; did you mean {near[0]!r}?" if near else ""


def _keys_of(model: type[BaseModel]) -> set[str]:
    """Every key of `model` and of the models nested in its fields."""
    keys, todo, seen = set(), [model], set()
    while todo:
        current = todo.pop()
        seen.add(current)
        for name, info in current.model_fields.items():
            keys.add(name)
            nested = [info.annotation, *typing.get_args(info.annotation)]
            for inner in (a for t in nested for a in (t, *typing.get_args(t))):
                if isinstance(inner, type) and issubclass(inner, BaseModel) and inner not in seen:
                    todo.append(inner)
    return keys


def load_scenario(path: str | Path | None = None) -> ScenarioSet:
    """Load and validate a scenario file; None loads the shipped default."""
    try:
        if path is None:
            text = (
                resources.files("orchestrator.dialog")
                .joinpath("scenarios/default.yaml")
                .read_text(encoding="utf-8")
            )
            source = "scenarios/default.yaml"
        else:
            text = Path(path).read_text(encoding="utf-8")
            source = str(path)
        document = yaml.safe_load(text)
    except OSError as exc:
        raise ScenarioError(f"cannot read scenario {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path or 'default scenario'}: not valid YAML: {exc}") from exc
    return parse_scenario(document, source)
