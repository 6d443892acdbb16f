"""One method job end to end on a tiny fixture dataset: train, super-resolve, score, save."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import write_tiny_sr_dataset

from srda.config import method_job_settings, resolve
from srda.run import run_method, train_steps


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return write_tiny_sr_dataset(
        tmp_path_factory.mktemp("data"),
        lambda rng, xx, yy: 0.5 + 0.4 * np.sin(6 * xx + rng.random() * 6) * np.cos(5 * yy),
        seed=0,
    )


def _settings(base_config, method, **train):
    config = {**base_config, "preset": "smoke"}
    config["method_defaults"] = {"train": {"steps": 2, "val_every": 2, **train}}
    config["datasets"]["adni-mri"]["patch"] = 16
    return method_job_settings(resolve(config), "adni-mri", method)


@pytest.mark.parametrize("method", ["bicubic", "srda_base", "srda"])
def test_job_writes_every_output(base_config, tiny_data, tmp_path, method):
    out = tmp_path / method
    summary = run_method(_settings(base_config, method), tiny_data, 4, 0, out, gpus=0)
    for split, n in (("train", 12), ("val", 3), ("test", 3)):
        sr = np.load(out / f"{split}.npy")
        assert sr.shape == (n, 32, 32) and sr.dtype == np.float32
        assert 0 <= sr.min() and sr.max() <= 1
    metrics = pd.read_csv(out / "test_metrics.csv")
    assert {"subject", "label", "psnr", "ssim"} <= set(metrics.columns) and len(metrics) == 3
    model = torch.load(out / "sr_model.pt", weights_only=True)
    assert model["arch"] == method and model["scale"] == 4
    assert json.loads((out / "run.json").read_text())["method"] == method
    assert (out / "attention.npz").exists() == (method == "srda")
    if method == "bicubic":
        assert summary["training"] == {} and summary["psnr"] > 20
    else:
        assert summary["training"]["trained"] and (out / "train" / "train_log.csv").exists()


def test_attention_maps_have_the_lr_size(base_config, tiny_data, tmp_path):
    run_method(_settings(base_config, "srda"), tiny_data, 4, 0, tmp_path, gpus=0)
    maps = np.load(tmp_path / "attention.npz")
    assert maps["sr_attention"].shape == (3, 8, 8)
    assert maps["diag_attention"].shape[1:] == (8, 8)


def test_the_resume_rule_from_the_workflow(base_config, tiny_data, tmp_path, caplog):
    """What Snakemake does on a rerun: it removes the job's declared outputs (not train/) and
    calls the job again with the new settings."""

    def rerun(**train):
        for path in (*tmp_path.glob("*.npy"), *tmp_path.glob("*.json"), *tmp_path.glob("*.csv")):
            path.unlink()
        caplog.clear()
        with caplog.at_level("INFO"):
            return run_method(
                _settings(base_config, "srda_base", **train), tiny_data, 4, 0, tmp_path, gpus=0
            )["training"]

    assert rerun()["resumed_from"] is None
    assert rerun()["resumed_from"] == 2  # same settings: nothing left to train
    raised = rerun(steps=4)
    assert raised["resumed_from"] == 2 and raised["steps"] == 4  # constant schedule: continues
    log = pd.read_csv(tmp_path / "train" / "train_log.csv")
    assert log["step"].tolist() == [1, 2, 3, 4]
    changed = rerun(steps=4, lr=2e-4)
    assert changed["resumed_from"] is None and "lr 0.0001 -> 0.0002" in caplog.text
    settings = _settings(base_config, "srda_base", steps=4, lr=2e-4)
    settings["overrides"] = {"blocks": 1}  # the model itself: fresh too
    caplog.clear()
    with caplog.at_level("INFO"):
        other = run_method(settings, tiny_data, 4, 0, tmp_path, gpus=0)["training"]
    assert other["resumed_from"] is None and "recipe" in caplog.text


def test_epochs_turn_into_steps():
    assert train_steps({"steps": 5, "epochs": None}, 100, 8) == 5
    assert train_steps({"steps": 5, "epochs": 1000}, 4080, 128) == 31875
