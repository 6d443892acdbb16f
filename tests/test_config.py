import copy
import json
from pathlib import Path

import pytest

from srda.config import (
    ConfigError,
    check_archs,
    check_dataset_paths,
    check_external_methods,
    dataset_job_settings,
    deep_merge,
    method_job_settings,
    prune_job_settings,
    resolve,
    write_job_settings,
)
from srda.errors import InputError


def test_deep_merge_later_layers_win_and_nested_dicts_merge():
    assert deep_merge({"a": {"b": 1, "c": 2}, "d": 1}, {"a": {"b": 3}}) == {
        "a": {"b": 3, "c": 2},
        "d": 1,
    }


def test_default_preset_is_quick_and_fills_schema_defaults(base_config):
    cfg = resolve(base_config)
    assert cfg["preset"] == "quick"
    ds = cfg["datasets"]["adni-mri"]
    assert ds["hr_size"] == 96  # from the quick preset
    assert ds["plane"] == "axial"  # schema default
    assert ds["synthetic"]["severity"] == 1.0  # config.yaml: literature-sized effects
    assert ds["synthetic"]["markers"]["cortex"] == 0.75
    assert ds["synthetic"]["n_subjects"] == 300  # quick: 30 test subjects at 8:1:1
    assert cfg["diagnosis"]["steps"] == 300
    assert cfg["run_datasets"] == ["adni-mri", "adni-pet", "demented-mri"]
    assert cfg["methods"]["bicubic"]["display"] == "Bicubic"


def test_precedence_preset_below_config_below_overrides(base_config):
    config = copy.deepcopy(base_config)
    config["preset"] = "smoke"
    assert resolve(config)["datasets"]["adni-mri"]["hr_size"] == 48
    config["datasets"]["adni-mri"]["hr_size"] = 64  # config.yaml / overlay / --config
    cfg = resolve(config)
    assert cfg["datasets"]["adni-mri"]["hr_size"] == 64
    assert cfg["datasets"]["adni-pet"]["hr_size"] == 48
    config["dataset_defaults"] = {"hr_size": 32, "patch": 16}
    assert resolve(config)["datasets"]["adni-pet"]["hr_size"] == 32


def test_paper_preset_carries_the_papers_protocol(base_config):
    cfg = resolve({**base_config, "preset": "paper"})
    assert cfg["datasets"]["adni-mri"]["batch_size"] == 128
    assert cfg["datasets"]["adni-pet"]["batch_size"] == 64
    assert cfg["datasets"]["demented-mri"]["batch_size"] == 8
    assert cfg["methods"]["bicubic"]["train"]["epochs"] == 1000
    assert cfg["methods"]["bicubic"]["size"] == "paper"


def test_unknown_key_is_named(base_config):
    config = copy.deepcopy(base_config)
    config["datasets"]["adni-mri"]["hr_sise"] = 64
    with pytest.raises(ConfigError, match=r"datasets\.adni-mri.*hr_sise"):
        resolve(config)


def test_wrong_value_is_named(base_config):
    with pytest.raises(ConfigError, match="split"):
        resolve({**base_config, "split": "random"})
    with pytest.raises(ConfigError, match="unknown preset 'huge'"):
        resolve({**base_config, "preset": "huge"})


def test_hr_size_must_divide_by_every_scale(base_config):
    config = copy.deepcopy(base_config)
    config["scales"] = [3, 4]  # quick hr_size 96 divides by 3 and 4
    resolve(config)
    config["datasets"]["adni-mri"]["hr_size"] = 100
    with pytest.raises(ConfigError, match="hr_size 100 .* divisible by scale 3"):
        resolve(config)


def test_run_selection_and_unknown_names(base_config):
    cfg = resolve({**base_config, "run_datasets": ["adni-pet"], "run_methods": ["bicubic"]})
    assert cfg["run_datasets"] == ["adni-pet"] and cfg["run_methods"] == ["bicubic"]
    with pytest.raises(ConfigError, match="unknown methods nope; known: bicubic, rcan"):
        resolve({**base_config, "run_methods": ["nope"]})


def test_your_own_data_takes_the_paper_presets_sizes_by_paper_name(base_config, tmp_path):
    config = copy.deepcopy(base_config)
    config["preset"] = "paper"
    config["datasets"]["kaggle-alzheimer"] = {
        "source": "folders",
        "path": str(tmp_path),
        "paper_name": "Demented-MRI",
    }
    config["datasets"]["unnamed"] = {"source": "folders", "path": str(tmp_path)}
    cfg = resolve(config)
    own = cfg["datasets"]["kaggle-alzheimer"]
    assert (own["hr_size"], own["patch"], own["batch_size"]) == (208, 64, 8)
    assert own["paper_name"] == "Demented-MRI"
    other = cfg["datasets"]["unnamed"]  # no paper_name: the preset's dataset defaults only
    assert (other["hr_size"], other["batch_size"]) == (128, 16)
    # the entry's own settings still win over the preset's
    config["datasets"]["kaggle-alzheimer"]["batch_size"] = 4
    assert resolve(config)["datasets"]["kaggle-alzheimer"]["batch_size"] == 4
    config["datasets"]["kaggle-alzheimer"]["paper_name"] = "Demented-mri"
    with pytest.raises(ConfigError, match="datasets.kaggle-alzheimer.paper_name"):
        resolve(config)


def test_synthetic_settings_do_not_reach_a_real_datasets_data_stage(base_config, tmp_path):
    config = copy.deepcopy(base_config)
    config["datasets"]["adni-mri"].update(source="nifti", path=str(tmp_path), labels="x.csv")
    before = dataset_job_settings(resolve(config), "adni-mri")
    config["datasets"]["adni-mri"]["synthetic"] = {"kind": "volumes", "severity": 2.0}
    after = dataset_job_settings(resolve(config), "adni-mri")
    assert before == after and "synthetic" not in after
    assert "synthetic" in dataset_job_settings(resolve(base_config), "adni-mri")


def test_overlay_adds_a_real_dataset(base_config, tmp_path):
    config = copy.deepcopy(base_config)
    config["datasets"]["mine"] = {"source": "nifti", "path": str(tmp_path), "labels": "x.csv"}
    cfg = resolve(config)
    assert cfg["datasets"]["mine"]["hr_size"] == 96
    with pytest.raises(ConfigError, match="needs a path"):
        config["datasets"]["mine"] = {"source": "folders"}
        resolve(config)


def test_job_settings_hold_only_what_the_job_needs(base_config):
    cfg = resolve(base_config)
    ds = dataset_job_settings(cfg, "adni-mri")
    assert ds["name"] == "adni-mri" and ds["scales"] == [4] and "methods" not in ds
    m = method_job_settings(cfg, "adni-pet", "bicubic")
    assert m["arch"] == "bicubic" and m["patch"] == 48 and m["batch_size"] == 16


def test_gpus_per_job_auto_follows_what_nvidia_smi_lists(base_config, monkeypatch, tmp_path):
    import stat

    def fake_nvidia_smi(listing: str, code: int = 0) -> None:
        tool = tmp_path / "nvidia-smi"
        tool.write_text(f"#!/bin/sh\nprintf '{listing}'\nexit {code}\n")
        tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
        monkeypatch.setenv("PATH", str(tmp_path))

    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi at all
    assert resolve(base_config)["gpus_per_job"] == 0
    fake_nvidia_smi("GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-x)\\n")
    assert resolve(base_config)["gpus_per_job"] == 1
    fake_nvidia_smi("No devices were found\\n", code=6)
    assert resolve(base_config)["gpus_per_job"] == 0
    assert resolve({**base_config, "gpus_per_job": 2})["gpus_per_job"] == 2


def test_nested_command_line_values_are_coerced_to_the_schema_types(base_config):
    # Snakemake passes `--config 'dataset_defaults={hr_size: 64}'` with string leaves.
    config = {**base_config, "preset": "smoke"}
    config["dataset_defaults"] = {"hr_size": "32", "patch": "16", "min_brain_fraction": "0.5"}
    cfg = resolve(config)
    assert cfg["datasets"]["adni-pet"]["hr_size"] == 32
    assert cfg["datasets"]["adni-pet"]["min_brain_fraction"] == 0.5
    with pytest.raises(ConfigError, match="hr_size"):
        resolve({**config, "dataset_defaults": {"hr_size": "big"}})
    # `--config scales=[4]` arrives as ['4']
    assert resolve({**config, "scales": ["4"], "seeds": ["0", "1"]})["scales"] == [4]
    assert resolve({**config, "seeds": ["0", "1"]})["seeds"] == [0, 1]


def test_diagnosis_recipe_per_preset_and_reserved_row_names(base_config):
    from srda.config import diagnosis_job_settings
    from srda.diagnosis.classifier import ClassifierSettings

    for preset, depth in (("smoke", 10), ("quick", 10), ("paper", 50)):
        cfg = resolve({**copy.deepcopy(base_config), "preset": preset})
        recipe = diagnosis_job_settings(cfg)
        assert recipe["depth"] == depth and "enabled" not in recipe
        ClassifierSettings.from_dict(recipe)  # every preset's recipe is a valid classifier
    config = copy.deepcopy(base_config)
    config["methods"]["lr"] = {"arch": "bicubic"}
    with pytest.raises(ConfigError, match="methods.lr"):
        resolve(config)
    config = copy.deepcopy(base_config)
    config["diagnosis"] = {"depth": 7}
    with pytest.raises(ConfigError, match="diagnosis.depth"):
        resolve(config)


def test_cohort_marker_weights_and_pet_resolution(base_config):
    config = copy.deepcopy(base_config)
    config["datasets"]["adni-pet"]["synthetic"]["markers"] = {"ventricles": 0.5}
    syn = resolve(config)["datasets"]["adni-pet"]["synthetic"]
    assert syn["markers"] == {
        "hippocampus": 1.0,
        "ventricles": 0.5,
        "cortex": 1.0,
        "pet_drop": 1.0,
        "pet_grey": 0.0,
    }  # the overlay replaced config.yaml's markers: the rest are the schema's defaults
    assert syn["pet_fwhm_mm"] == [3.5, 4.5]  # config.yaml: calibrated (docs/cohort.md)
    assert resolve(config)["datasets"]["demented-mri"]["synthetic"]["pet_fwhm_mm"] == [6.0, 8.0]
    config["datasets"]["adni-pet"]["synthetic"]["markers"] = {"amygdala": 2.0}
    with pytest.raises(ConfigError, match=r"adni-pet\.synthetic\.markers.*amygdala"):
        resolve(config)
    config["datasets"]["adni-pet"]["synthetic"]["markers"] = {"cortex": -1}
    with pytest.raises(ConfigError, match="cortex"):
        resolve(config)
    config["datasets"]["adni-pet"]["synthetic"].pop("markers")
    config["datasets"]["adni-pet"]["synthetic"]["pet_fwhm_mm"] = [4.0]
    with pytest.raises(ConfigError, match="pet_fwhm_mm"):
        resolve(config)


def _with_dataset(base_config, entry: dict) -> dict:
    config = copy.deepcopy(base_config)
    config["datasets"]["mine"] = entry
    return resolve({**config, "run_datasets": ["mine"]})


def test_dataset_paths_are_checked_at_start_naming_dataset_and_path(base_config, tmp_path):
    (tmp_path / "vols").mkdir()
    labels = tmp_path / "labels.csv"
    labels.write_text("subject,label\n")
    entry = {"source": "nifti", "path": str(tmp_path / "vols"), "labels": str(labels)}
    check_dataset_paths(_with_dataset(base_config, entry))
    for key, bad, problem in (
        ("path", str(tmp_path / "nope"), "dataset folder does not exist"),
        ("labels", str(tmp_path / "nope.csv"), "labels CSV does not exist"),
        ("labels", str(tmp_path / "vols"), "labels CSV is not a file"),
        ("masks", str(labels), "masks folder is not a folder"),
    ):
        with pytest.raises(InputError) as err:
            check_dataset_paths(_with_dataset(base_config, {**entry, key: bad}))
        assert (err.value.where, err.value.problem) == (bad, f"dataset mine: {problem}")
    with pytest.raises(InputError, match="a relative path starts from"):
        check_dataset_paths(_with_dataset(base_config, {**entry, "path": "no/such/folder"}))
    with pytest.raises(InputError, match="dataset mine: no labels CSV given .* participants.tsv"):
        check_dataset_paths(_with_dataset(base_config, {**entry, "labels": None}))
    (tmp_path / "vols" / "participants.tsv").write_text("participant_id\tgroup\n")
    check_dataset_paths(_with_dataset(base_config, {**entry, "labels": None}))
    # the embedded cohort and datasets not run are not looked for
    check_dataset_paths(resolve(base_config))
    config = copy.deepcopy(base_config)
    config["datasets"]["mine"] = {**entry, "path": str(tmp_path / "nope")}
    check_dataset_paths(resolve(config | {"run_datasets": ["adni-mri"]}))


def test_a_misspelt_arch_is_refused_with_the_closest_registered_name(base_config):
    config = copy.deepcopy(base_config)
    config["methods"]["rcan"]["arch"] = "rcna"
    cfg = resolve(config)
    with pytest.raises(ConfigError, match=r"methods.rcan.arch: unknown architecture 'rcna'; "):
        check_archs(cfg, ["bicubic", "rcan", "swinir"])
    with pytest.raises(ConfigError, match=r"did you mean 'rcan'\? \(registered: bicubic, rcan"):
        check_archs(cfg, ["bicubic", "rcan", "swinir"])
    check_archs(cfg, None)  # names unknown: the job tells
    check_archs(resolve({**config, "run_methods": ["bicubic", "lanczos"]}), ["bicubic"])


def test_an_external_method_needs_a_rule_or_files_for_its_shards(base_config):
    cfg = resolve({**base_config, "run_methods": ["bicubic", "lanczos"]})
    shards = lambda m: [f"{m}/train.npy", f"{m}/val.npy", f"{m}/test.npy"]  # noqa: E731
    check_external_methods(cfg, shards, lambda path: True)
    with pytest.raises(ConfigError) as err:
        check_external_methods(cfg, shards, lambda path: path.endswith("train.npy"))
    assert "methods.lanczos: external: true, but no rule writes" in str(err.value)
    assert "(lanczos/val.npy and 1 more)" in str(err.value)


def test_job_settings_files_are_named_by_their_content(tmp_path):
    a = write_job_settings({"name": "adni-mri", "x": 1}, tmp_path)
    assert Path(a).parent == tmp_path and Path(a).name.startswith("adni-mri-")
    assert json.loads(Path(a).read_text()) == {"name": "adni-mri", "x": 1}
    assert write_job_settings({"x": 1, "name": "adni-mri"}, tmp_path) == a  # key order
    b = write_job_settings({"name": "adni-mri", "x": 2}, tmp_path)
    assert b != a and json.loads(Path(a).read_text())["x"] == 1
    assert Path(write_job_settings({"rows": [1]}, tmp_path)).name.startswith("settings-")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_settings_files_no_run_has_named_for_a_while_are_pruned(tmp_path):
    import os

    old = Path(write_job_settings({"name": "old", "x": 1}, tmp_path))
    reused = Path(write_job_settings({"name": "reused", "x": 1}, tmp_path))
    fresh = Path(write_job_settings({"name": "fresh", "x": 1}, tmp_path))
    month_ago = fresh.stat().st_mtime - 31 * 86400
    for path in (old, reused):
        os.utime(path, (month_ago, month_ago))
    (tmp_path / "notes.txt").write_text("not ours")
    os.utime(tmp_path / "notes.txt", (month_ago, month_ago))
    assert write_job_settings({"name": "reused", "x": 1}, tmp_path) == str(reused)  # touches it
    assert prune_job_settings(tmp_path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [reused.name, fresh.name, "notes.txt"]
    )
    assert prune_job_settings(tmp_path, keep_days=0, now=fresh.stat().st_mtime + 1) == 2
    assert prune_job_settings(tmp_path / "absent") == 0


def test_a_methods_training_recipe_comes_from_its_registry_spec(base_config):
    from srda.registry import declared_train

    recipes = declared_train("baselines")
    assert recipes["a2f"] == {"loss": "l1", "lr": 0.001, "schedule": "step"}
    assert "train" not in base_config["methods"]["a2f"]  # config.yaml no longer copies it
    cfg = resolve(base_config)
    for m, entry in cfg["methods"].items():
        if not entry["external"]:
            recipe = recipes[entry["arch"]]
            assert {k: entry["train"][k] for k in recipe} == recipe, m
    config = copy.deepcopy(base_config)
    config["method_defaults"] = {"train": {"lr": 0.005}}
    config["methods"]["rcan"]["train"] = {"lr": 0.0003}
    cfg = resolve(config)
    assert cfg["methods"]["rcan"]["train"]["lr"] == 0.0003  # the entry wins over its recipe
    assert cfg["methods"]["a2f"]["train"]["lr"] == 0.001  # the recipe over a global default
    assert cfg["methods"]["srd"]["train"]["lr"] == 0.005  # SRD's recipe names no lr
    assert cfg["methods"]["lanczos"]["train"]["lr"] == 0.005  # outside tools have none


def test_a_misspelt_key_gets_the_closest_known_one(base_config):
    config = copy.deepcopy(base_config)
    config["sedds"] = [1]
    with pytest.raises(ConfigError, match="'sedds': did you mean 'seeds'"):
        resolve(config)
    config = copy.deepcopy(base_config)
    config["diagnosis"] = {"until_plateu": True}
    with pytest.raises(ConfigError, match="diagnosis: .*did you mean 'until_plateau'"):
        resolve(config)
    config = copy.deepcopy(base_config)
    config["zzz"] = 1
    with pytest.raises(ConfigError) as refused:
        resolve(config)
    assert "did you mean" not in str(refused.value)  # nothing close: no guess


def test_each_dataset_takes_the_degradations_that_fit_its_modality(base_config):
    cfg = resolve(base_config)
    assert {d: ds["degradations"] for d, ds in cfg["datasets"].items()} == {
        d: ["bicubic"] for d in cfg["datasets"]
    }
    config = {**base_config, "degradations": ["bicubic", "kspace", "pet"]}
    config["degradation_params"] = {"pet": {"dose": 0.25}, "kspace": {"snr": 30}}
    cfg = resolve(config)
    assert cfg["datasets"]["adni-mri"]["degradations"] == ["bicubic", "kspace"]
    assert cfg["datasets"]["demented-mri"]["degradations"] == ["bicubic", "kspace"]
    assert cfg["datasets"]["adni-pet"]["degradations"] == ["bicubic", "pet"]
    # the dataset's own parameters win key by key over the global ones
    assert cfg["datasets"]["adni-pet"]["degradation_params"]["pet"] == {
        "dose": 0.25,
        "hr_fwhm_mm": 4.0,
    }
    assert cfg["datasets"]["adni-mri"]["degradation_params"]["kspace"] == {"snr": 30}


@pytest.mark.parametrize(
    "change, needle",
    [
        (
            {"degradations": ["bicubc"]},
            "degradations: unknown degradation 'bicubc' (did you mean 'bicubic'?)",
        ),
        ({"degradations": ["kspace"]}, "none of kspace fits dataset adni-pet (pet)"),
        ({"degradation_params": {"pet": {"dose": 2.0}}}, "datasets.adni-pet: degradation 'pet'"),
        ({"degradation_params": {"kspace": {"sn": 30}}}, "has no parameter 'sn'"),
        ({"degradation_params": {"blur": {}}}, "degradation_params: unknown degradation 'blur'"),
        ({"diagnosis": {"cross_fit": 2}}, "cross-fitting uses the bicubic LR images only"),
    ],
)
def test_degradation_mistakes_are_named(base_config, change, needle):
    config = {**base_config, "degradations": ["bicubic", "kspace", "pet"], **change}
    with pytest.raises(ConfigError) as err:
        resolve(config)
    assert needle in str(err.value)


def test_a_datasets_own_degradations_must_fit_and_rerun_no_data_stage(base_config):
    config = copy.deepcopy(base_config)
    config["datasets"]["adni-pet"]["degradations"] = ["bicubic", "kspace"]
    with pytest.raises(ConfigError, match="adni-pet.degradations: degradation 'kspace' models MRI"):
        resolve(config)
    config["datasets"]["adni-pet"]["degradations"] = ["pet"]
    cfg = resolve(config)
    assert cfg["datasets"]["adni-pet"]["degradations"] == ["pet"]
    before = dataset_job_settings(resolve(base_config), "adni-pet")
    assert dataset_job_settings(cfg, "adni-pet") == before
    assert "degradations" not in before and "degradation_params" not in before


@pytest.mark.parametrize("kind", ["train", "classifier"])
def test_job_settings_take_every_default_from_the_schema(kind):
    """One source for a setting's default: what the workflow fills in (the schema) is what the
    dataclass gives a Python caller, and its bounds accept the schema's smallest value."""
    from dataclasses import MISSING, fields

    from srda import schema
    from srda.diagnosis.classifier import ClassifierSettings
    from srda.train.trainer import TrainSettings

    cls = {"train": TrainSettings, "classifier": ClassifierSettings}[kind]
    node = schema.job_settings_node(kind)
    defaults = schema.job_defaults(kind)
    required = {"steps": 3, "batch_size": 4, "patch": 8} if kind == "train" else {}
    shared = [f for f in fields(cls) if f.name in node["properties"]]
    assert len(shared) >= 10, [f.name for f in shared]
    for field in shared:
        if field.default is MISSING:  # given by the preset and the dataset (steps, batch)
            assert field.name in required, field.name
            continue
        assert field.default == defaults[field.name], field.name
        minimum = schema.deref(schema._schema(), node["properties"][field.name]).get("minimum")
        if minimum is not None:
            cls(**{**required, field.name: minimum})  # the schema's smallest value is accepted
