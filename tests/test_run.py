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


def test_changed_settings_retrain_from_scratch(base_config, tiny_data, tmp_path):
    run_method(_settings(base_config, "srda_base"), tiny_data, 4, 0, tmp_path, gpus=0)
    again = run_method(_settings(base_config, "srda_base"), tiny_data, 4, 0, tmp_path, gpus=0)
    assert again["training"]["resumed_from"] == 2  # same settings: nothing left to train
    changed = run_method(
        _settings(base_config, "srda_base", lr=2e-4), tiny_data, 4, 0, tmp_path, gpus=0
    )
    assert not changed["training"]["resumed_from"]


def test_epochs_turn_into_steps():
    assert train_steps({"steps": 5, "epochs": None}, 100, 8) == 5
    assert train_steps({"steps": 5, "epochs": 1000}, 4080, 128) == 31875
