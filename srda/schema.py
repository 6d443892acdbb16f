"""The configuration schema (workflow/schemas/config.schema.yaml) as data: read once, with its
defaults. The one source of every setting's default: srda.config fills them into the workflow's
configuration, and the job settings' dataclasses (``TrainSettings``, ``ClassifierSettings``)
take theirs from here, so a setting means the same from the workflow and from Python. Imports
only yaml (the trainers import it at start-up).
"""

from __future__ import annotations

import copy
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "workflow" / "schemas" / "config.schema.yaml"
#: The schema node of each kind of job settings.
JOB_SETTINGS = {
    "train": ("method_settings", "train"),  # a method's train: block (TrainSettings)
    "classifier": ("diagnosis_settings",),  # diagnosis: (ClassifierSettings)
}


def load_schema(path: Path | str = SCHEMA_PATH) -> dict[str, Any]:
    with open(path) as fh:
        return yaml.safe_load(fh)


@lru_cache(maxsize=1)
def _schema() -> dict[str, Any]:
    return load_schema()


def deref(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = schema
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def merge(*layers: dict[str, Any]) -> dict[str, Any]:
    """Merge dicts left to right; later layers win, nested dicts merge key by key."""
    out: dict[str, Any] = {}
    for layer in layers:
        for key, value in (layer or {}).items():
            if isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = merge(out[key], value)
            else:
                out[key] = copy.deepcopy(value)
    return out


def defaults(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """Defaults of an object node, recursing into sub-objects that declare properties."""
    node = deref(schema, node)
    out: dict[str, Any] = {}
    for key, sub in node.get("properties", {}).items():
        own = sub.get("default") if "$ref" in sub else None  # a default beside a $ref wins
        sub_node = deref(schema, sub)
        if "properties" in sub_node:
            out[key] = merge(defaults(schema, sub_node), sub_node.get("default", {}), own or {})
        elif own is not None or "default" in sub_node:
            out[key] = copy.deepcopy(own if own is not None else sub_node["default"])
    return out


def job_settings_node(kind: str) -> dict[str, Any]:
    """The schema node (properties, defaults, bounds) of one kind of job settings."""
    name, *path = JOB_SETTINGS[kind]
    schema = _schema()
    node = deref(schema, schema["$defs"][name])
    for key in path:
        node = deref(schema, node["properties"][key])
    return node


def job_defaults(kind: str) -> dict[str, Any]:
    """The schema's defaults for one kind of job settings (``train`` or ``classifier``)."""
    return defaults(_schema(), job_settings_node(kind))
