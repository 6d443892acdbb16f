"""Resolve the workflow configuration: validate, merge the preset, fill schema defaults.

Precedence, lowest first: schema defaults < the chosen preset < config.yaml < ``--configfile``
overlays < ``--config``. Snakemake has already merged the last three into one dict; this module
slides the preset and the schema defaults in beneath it. Imports nothing heavy: the Snakefile
calls it at parse time.
"""

from __future__ import annotations

import copy
import difflib
import functools
import hashlib
import importlib
import json
import math
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import jsonschema

from srda import schema as config_schema
from srda.errors import InputError
from srda.reference_rows import REFERENCE_ROWS

SCHEMA_PATH = config_schema.SCHEMA_PATH
#: Image sources of the diagnosis experiment that are not methods (Table III's rows).
RESERVED_SOURCES = tuple(REFERENCE_ROWS)


class ConfigError(InputError):
    """A wrong key or value in the configuration."""


# Kept under their old names (tests and callers use them).
deep_merge = config_schema.merge
load_schema = config_schema.load_schema
_deref = config_schema.deref
schema_defaults = config_schema.defaults


def _coerce(schema: dict[str, Any], node: dict[str, Any], value: Any) -> Any:
    """Turn strings into the numbers / booleans the schema asks for. Snakemake hands nested
    ``--config`` values (``dataset_defaults={hr_size: 64}``) over as strings."""
    node = _deref(schema, node)
    if isinstance(value, dict):
        props, extra = node.get("properties", {}), node.get("additionalProperties")
        return {
            k: _coerce(schema, props[k], v)
            if k in props
            else _coerce(schema, extra, v)
            if isinstance(extra, dict)
            else v
            for k, v in value.items()
        }
    if isinstance(value, list) and isinstance(node.get("items"), dict):
        return [_coerce(schema, node["items"], v) for v in value]
    if isinstance(value, str):
        types = node.get("type", [])
        types = [types] if isinstance(types, str) else list(types)
        for branch in node.get("oneOf", []):  # e.g. an integer or the word `scale`
            if value == branch.get("const"):
                return value
            types += [branch["type"]] if isinstance(branch.get("type"), str) else []
        for kind, convert in (("integer", int), ("number", float)):
            if kind in types:
                try:
                    return convert(value)
                except ValueError:
                    pass
        if "boolean" in types and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if "null" in types and value.lower() in ("null", "none", "~"):
            return None
    return value


def _validate(schema: dict[str, Any], instance: Any, node: dict[str, Any], where: str) -> None:
    validator = jsonschema.Draft202012Validator({**node, "$defs": schema["$defs"]})
    error = jsonschema.exceptions.best_match(validator.iter_errors(instance))
    if error is not None:
        path = ".".join(str(p) for p in error.absolute_path)
        where = ".".join(p for p in (where, path) if p) or "(top level)"
        raise ConfigError("config", f"{where}: {error.message}{_did_you_mean(error)}")


def _did_you_mean(error: jsonschema.exceptions.ValidationError) -> str:
    """For a misspelt key: the closest keys the schema knows at that place."""
    if error.validator != "additionalProperties" or not isinstance(error.instance, dict):
        return ""
    known = list(error.schema.get("properties", {}))
    hints = []
    for key in error.instance:
        if key in known:
            continue
        close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
        if close:
            hints.append(f"'{key}': did you mean '{close[0]}'?")
    return ("; " + "; ".join(hints)) if hints else ""


def _select(requested: Any, known: dict[str, Any], kind: str) -> list[str]:
    if requested == "all":
        return list(known)
    unknown = [name for name in requested if name not in known]
    if unknown:
        raise ConfigError(
            "config", f"run_{kind}: unknown {kind} {', '.join(unknown)}; known: {', '.join(known)}"
        )
    return list(requested)


def _top_level(layer: dict[str, Any]) -> dict[str, Any]:
    """The settings of a config layer other than its per-dataset and per-method entries."""
    nested = ("datasets", "methods", "presets", "description")
    return {k: v for k, v in layer.items() if k not in nested}


@functools.cache
def arch_recipes(package: str = "baselines") -> dict[str, dict[str, Any]]:
    """Architecture name -> the training recipe its paper prescribes (its registry spec's
    ``train``), read from the source without importing torch; imported when the source does
    not tell (a recipe that is not a literal)."""
    from srda import registry

    recipes = registry.declared_train(package)
    if recipes is None:
        importlib.import_module(package)
        recipes = {name: dict(registry.spec(name).train) for name in registry.names()}
    return recipes


def detect_gpus() -> int:
    """1 when an NVIDIA GPU is visible (checked without importing torch), else 0."""
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return 0
    return 1 if out.returncode == 0 and "GPU" in out.stdout else 0


def resolve(config: dict[str, Any], schema_path: Path | str = SCHEMA_PATH) -> dict[str, Any]:
    """The configuration every rule and CLI call uses, with presets and defaults applied."""
    schema = load_schema(schema_path)
    config = _coerce(schema, schema, config)
    _validate(schema, config, schema, "")

    name = config.get("preset", "quick")
    presets = config.get("presets", {})
    if name not in presets:
        raise ConfigError("config", f"preset: unknown preset '{name}'; known: {', '.join(presets)}")
    preset = presets[name]

    top_defaults = {
        k: v
        for k, v in schema_defaults(schema, schema).items()
        if k not in ("dataset_defaults", "method_defaults")
    }
    out = deep_merge(top_defaults, _top_level(preset), _top_level(config))

    dataset_base = schema_defaults(schema, schema["$defs"]["dataset_settings"])
    synthetic_base = schema_defaults(schema, schema["$defs"]["synthetic_settings"])
    datasets = {}
    for ds, entry in config["datasets"].items():
        # A preset's per-dataset entry is found by the dataset's key or by the paper's name
        # of the data set it stands in for (the key wins): your own data at the paper's sizes.
        paper_name = deep_merge(dataset_base, config.get("dataset_defaults", {}), entry)[
            "paper_name"
        ]
        by_name = preset.get("datasets", {})
        merged = deep_merge(
            dataset_base,
            preset.get("dataset_defaults", {}),
            by_name.get(paper_name, {}) if paper_name else {},
            by_name.get(ds, {}),
            config.get("dataset_defaults", {}),
            entry,
        )
        if merged["source"] == "synthetic":
            merged["synthetic"] = deep_merge(synthetic_base, merged.get("synthetic", {}))
        elif merged.get("path") is None:
            raise ConfigError("config", f"datasets.{ds}: source '{merged['source']}' needs a path")
        for scale in out["scales"]:
            if merged["hr_size"] % scale or merged["patch"] % scale:
                raise ConfigError(
                    "config",
                    f"datasets.{ds}: hr_size {merged['hr_size']} and patch {merged['patch']} "
                    f"must be divisible by scale {scale}",
                )
        if merged["patch"] > merged["hr_size"]:
            raise ConfigError(
                "config", f"datasets.{ds}: patch {merged['patch']} > hr_size {merged['hr_size']}"
            )
        _validate(schema, merged, schema["$defs"]["dataset_settings"], f"datasets.{ds}")
        merged.update(_dataset_degradations(out, ds, merged))
        datasets[ds] = merged

    method_base = schema_defaults(schema, schema["$defs"]["method_settings"])
    methods = {}
    for m, entry in config["methods"].items():
        # the architecture's own training recipe (its registry spec) sits just under the
        # method's entry: more specific than any default, and the entry still wins
        recipe = arch_recipes().get(entry.get("arch"), {}) if not entry.get("external") else {}
        merged = deep_merge(
            method_base,
            preset.get("method_defaults", {}),
            preset.get("methods", {}).get(m, {}),
            config.get("method_defaults", {}),
            {"train": copy.deepcopy(recipe)},
            entry,
        )
        merged.setdefault("display", m)
        if m in RESERVED_SOURCES:
            raise ConfigError(
                "config", f"methods.{m}: '{m}' names a reference row of Table III ({m})"
            )
        if not merged["external"] and "arch" not in merged:
            raise ConfigError("config", f"methods.{m}: needs an arch (or external: true)")
        _validate(schema, merged, schema["$defs"]["method_settings"], f"methods.{m}")
        methods[m] = merged

    out["datasets"] = datasets
    out["methods"] = methods
    out["run_datasets"] = _select(out["run_datasets"], datasets, "datasets")
    out["run_methods"] = _select(out["run_methods"], methods, "methods")
    for m in out["leakage"]["methods"]:
        if m not in methods:
            raise ConfigError("config", f"leakage.methods: unknown method '{m}'")
    if out["gpus_per_job"] == "auto":
        out["gpus_per_job"] = detect_gpus()
    others = sorted({g for ds in datasets.values() for g in ds["degradations"]} - {"bicubic"})
    if others and out["diagnosis"]["cross_fit"] >= 2:
        raise ConfigError(
            "config",
            f"diagnosis.cross_fit: cross-fitting uses the bicubic LR images only; run it with "
            f"degradations: [bicubic] (here also {', '.join(others)})",
        )
    fractions = out["split_fractions"]
    if not math.isclose(sum(fractions.values()), 1.0, abs_tol=1e-6):
        raise ConfigError("config", f"split_fractions: {fractions} must sum to 1")
    return out


def _dataset_degradations(out: dict[str, Any], ds: str, entry: dict[str, Any]) -> dict[str, Any]:
    """A dataset's LR models and their parameters, checked against the registry: its own list
    (each must fit its modality) or the global list's models that fit; parameters are the
    global ``degradation_params`` under the dataset's, each checked by its model."""
    from srda.data import degrade

    known = degrade.degradation_kinds()
    own = entry["degradations"] is not None
    key = f"datasets.{ds}.degradations" if own else "degradations"
    names = entry["degradations"] if own else out["degradations"]
    for where, given in (
        (key, names),
        ("degradation_params", out["degradation_params"]),
        (f"datasets.{ds}.degradation_params", entry["degradation_params"]),
    ):
        for name in given:
            if name not in known:
                close = difflib.get_close_matches(str(name), known, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise ConfigError(
                    "config",
                    f"{where}: unknown degradation '{name}'{hint}; known: {', '.join(known)}",
                )
    fitting = [d for d in names if degrade.fits(d, entry["modality"])]
    if own and fitting != list(names):
        bad = next(d for d in names if d not in fitting)
        try:
            degrade.check_fits(bad, entry["modality"])
        except ValueError as exc:
            raise ConfigError("config", f"{key}: {exc}") from None
    if not fitting:
        raise ConfigError(
            "config",
            f"{key}: none of {', '.join(names)} fits dataset {ds} ({entry['modality']}); add "
            f"one that does, e.g. bicubic",
        )
    params = {}
    for name in fitting:
        given = deep_merge(
            out["degradation_params"].get(name, {}), entry["degradation_params"].get(name, {})
        )
        try:
            degrade.resolve_params(name, **given)
        except ValueError as exc:
            raise ConfigError("config", f"datasets.{ds}: {exc}") from None
        params[name] = given
    return {"degradations": fitting, "degradation_params": params}


def dataset_job_settings(cfg: dict[str, Any], dataset: str) -> dict[str, Any]:
    """What the data stage of one dataset needs (so a change elsewhere does not rerun it; a
    real dataset's stage does not see the embedded cohort's ``synthetic`` settings)."""
    ds = cfg["datasets"][dataset]
    # the data stage makes bicubic LR only (srda.data.lowres the others): a change of models
    # or of a real dataset's synthetic settings reruns nothing here
    dropped = {"degradations", "degradation_params"}
    if ds["source"] != "synthetic":
        dropped.add("synthetic")
    ds = {k: v for k, v in ds.items() if k not in dropped}
    return {
        "name": dataset,
        **ds,
        "scales": cfg["scales"],
        "split": cfg["split"],
        "split_fractions": cfg["split_fractions"],
        "split_seed": cfg["split_seed"],
    }


def method_job_settings(cfg: dict[str, Any], dataset: str, method: str) -> dict[str, Any]:
    """What one (dataset, method) job needs: the method entry plus the dataset's training sizes."""
    ds = cfg["datasets"][dataset]
    return {
        "name": method,
        **cfg["methods"][method],
        "patch": ds["patch"],
        "batch_size": cfg["methods"][method]["train"].get("batch_size") or ds["batch_size"],
        "channels": 1,
        # How the training slices were made, so a saved model can be applied to new volumes.
        "plane": ds["plane"],
        "clip_percentiles": ds["clip_percentiles"],
    }


def other_split_mode(split: str) -> str:
    """The split mode the leakage study sets beside ``split``."""
    return "slices" if split == "subjects" else "subjects"


def leakage_config(
    raw: dict[str, Any], leakage: dict[str, Any], split: str, results_dir: str
) -> dict[str, Any]:
    """The raw configuration of the leakage study's other run (``split``, in ``results_dir``):
    only the split, the results folder, the methods and the reference rows differ from the
    main run's ``raw`` configuration, and the LR model is the paper's (bicubic) alone."""
    out = copy.deepcopy(raw)
    out.update(split=split, results_dir=results_dir, run_methods=list(leakage["methods"]))
    out["degradations"] = ["bicubic"]
    for entry in out.get("datasets", {}).values():
        entry.pop("degradations", None)
    diagnosis = out["diagnosis"] = dict(out.get("diagnosis") or {})
    rows = diagnosis["rows"] = copy.deepcopy(diagnosis.get("rows") or {})
    for row in REFERENCE_ROWS:
        rows[row] = {**rows.get(row, {}), "enabled": row in leakage["rows"]}
    return out


def diagnosis_job_settings(
    cfg: dict[str, Any], row: str | None = None, scale: int | None = None
) -> dict[str, Any]:
    """The classifier recipe (``srda.diagnosis.ClassifierSettings`` fields) shared by every row
    of Table III, with a reference row's own input handling (``upsample: scale`` resolved for
    ``scale``); method rows read SR images at the HR size as they are. The seed is the job's."""
    skip = ("enabled", "rows", "cross_fit")
    recipe = {k: v for k, v in cfg["diagnosis"].items() if k not in skip}
    if row is None:
        return recipe
    own = cfg["diagnosis"]["rows"][row]
    upsample = own["upsample"]
    if upsample == "scale":
        if scale is None:
            raise ValueError(f"diagnosis.rows.{row}: upsample 'scale' needs the scale")
        upsample = int(scale)
    recipe.update(upsample=upsample, upsample_mode=own["upsample_mode"])
    if REFERENCE_ROWS[row].shuffle_labels:
        recipe["shuffle_labels"] = True
    return recipe


def enabled_reference_rows(cfg: dict[str, Any]) -> list[str]:
    """The reference rows of Table III this configuration trains, in table order."""
    rows = cfg["diagnosis"]["rows"]
    return [name for name in REFERENCE_ROWS if rows[name]["enabled"]]


def cross_fitted_methods(cfg: dict[str, Any]) -> list[str]:
    """Methods whose classifier learns from cross-fitted train SR images: learned ones, when
    ``diagnosis.cross_fit`` is on (Bicubic and outside tools see no training data)."""
    if cfg["diagnosis"]["cross_fit"] < 2:
        return []
    return [
        m
        for m in cfg["run_methods"]
        if not cfg["methods"][m]["external"] and cfg["methods"][m]["arch"] != "bicubic"
    ]


def complete_dataset_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """Fill a hand-written dataset job's settings (CLI use) with the schema's defaults."""
    schema = load_schema()
    top = schema_defaults(schema, schema)
    base = deep_merge(
        schema_defaults(schema, schema["$defs"]["dataset_settings"]),
        {"synthetic": schema_defaults(schema, schema["$defs"]["synthetic_settings"])},
        {k: top[k] for k in ("scales", "split", "split_fractions", "split_seed")},
    )
    out = deep_merge(base, settings)
    out.setdefault("name", "dataset")
    if out["source"] != "synthetic" and not out.get("path"):
        raise ConfigError("settings", f"source '{out['source']}' needs a path")
    job_keys = ("name", "scales", "split", "split_fractions", "split_seed")
    own = {k: v for k, v in out.items() if k not in job_keys}
    _validate(schema, own, schema["$defs"]["dataset_settings"], "settings")
    return out


# --------------------------------------------------------------------------------------------
# checks made when the workflow starts (dry runs included), before any job


def check_dataset_paths(cfg: dict[str, Any]) -> None:
    """Every real dataset to run has its folder and files where its entry says (so that a
    wrong path stops the run with this message, not with Snakemake's MissingInputException)."""
    for ds in cfg["run_datasets"]:
        entry = cfg["datasets"][ds]
        if entry["source"] == "synthetic":
            continue
        _require(entry["path"], ds, "dataset folder", folder=True)
        for key, what, folder in (
            ("labels", "labels CSV", False),
            ("masks", "masks folder", True),
            ("subjects", "subjects CSV", False),
        ):
            if entry.get(key):
                _require(entry[key], ds, what, folder)
        bids_table = Path(entry["path"]).expanduser() / "participants.tsv"
        if entry["source"] == "nifti" and not entry.get("labels") and not bids_table.is_file():
            raise InputError(
                entry["path"],
                f"dataset {ds}: no labels CSV given (labels:) and no participants.tsv here",
            )


def _require(path: str, dataset: str, what: str, folder: bool) -> None:
    p = Path(path).expanduser()
    if not p.exists():
        hint = "" if p.is_absolute() else f" (a relative path starts from {Path.cwd()})"
        raise InputError(path, f"dataset {dataset}: {what} does not exist{hint}")
    if p.is_dir() != folder:
        kind = "folder" if folder else "file"
        raise InputError(path, f"dataset {dataset}: {what} is not a {kind}")


def check_archs(cfg: dict[str, Any], registered: Collection[str] | None) -> None:
    """Every method to run names a registered architecture; ``registered`` is None when the
    names cannot be known here (then the training job reports an unknown one)."""
    if registered is None:
        return
    known = sorted(registered)
    for m in cfg["run_methods"]:
        entry = cfg["methods"][m]
        if entry["external"] or entry["arch"] in registered:
            continue
        close = difflib.get_close_matches(entry["arch"], known, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise ConfigError(
            "config",
            f"methods.{m}.arch: unknown architecture '{entry['arch']}'{hint} "
            f"(registered: {', '.join(known)}; an outside tool is external: true)",
        )


def check_external_methods(
    cfg: dict[str, Any],
    shards: Callable[[str], list[str]],
    has_producer: Callable[[str], bool],
) -> None:
    """Every outside-tool method to run has a rule that writes its SR shards (``shards(m)``:
    the paths the suite reads; ``has_producer(path)``: a rule writes it, or it exists)."""
    for m in cfg["run_methods"]:
        if not cfg["methods"][m]["external"]:
            continue
        orphans = [p for p in shards(m) if not has_producer(p)]
        if orphans:
            more = f" and {len(orphans) - 1} more" if len(orphans) > 1 else ""
            raise ConfigError(
                "config",
                f"methods.{m}: external: true, but no rule writes its SR shards "
                f"({orphans[0]}{more}); add one (the lanczos rule in "
                "workflow/rules/external.smk is the example) or give the method an arch",
            )


def write_job_settings(settings: dict[str, Any], folder: Path | str) -> str:
    """Write a job's settings to ``folder`` as JSON, under a name made of their content, and
    return the path (for ``srda-bench ... --settings PATH``). The path changes exactly when
    the settings do, so as a rule's param it reruns only the jobs a change concerns, and the
    command Snakemake prints for a failed job carries the path, not the settings."""
    text = json.dumps(settings, sort_keys=True)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    name = settings.get("name")
    stem = re.sub(r"[^\w.-]+", "_", name) if isinstance(name, str) and name else "settings"
    path = Path(folder) / f"{stem}-{digest}.json"
    if path.is_file():
        path.touch()  # in use again: prune_job_settings keeps it
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_name(f".{path.name}.{os.getpid()}")
        part.write_text(text)
        part.replace(path)
    return str(path)


#: Settings files no workflow has named for this long are removed when a workflow starts.
SETTINGS_KEEP_DAYS = 30


def prune_job_settings(
    folder: Path | str, keep_days: float = SETTINGS_KEEP_DAYS, now: float | None = None
) -> int:
    """Remove the settings files under ``folder`` that no workflow has named (written or
    touched by ``write_job_settings``) for ``keep_days``; return how many. Every workflow
    names the files of its jobs when it builds its DAG, so a file still in use by a run
    started within ``keep_days`` is kept; old settings would otherwise pile up, one file per
    configuration ever run."""
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    cutoff = (time.time() if now is None else now) - keep_days * 86400
    removed = 0
    for path in folder.glob("*.json"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except FileNotFoundError:  # another workflow pruned it first
            continue
    return removed
