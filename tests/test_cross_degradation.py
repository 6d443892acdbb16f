"""A saved SR network scored on another degradation's test images (srda.cross_degradation)."""

import numpy as np
import pandas as pd
import pytest
import torch

import baselines  # noqa: F401
from srda import registry
from srda.cross_degradation import score_on
from srda.data.degrade import degrade
from srda.errors import InputError
from srda.evaluate import score_method
from srda.run import save_sr_model
from srda.shards import write_shard
from srda.train.infer import super_resolve
from tests.conftest import write_tiny_sr_dataset


def _smooth(rng, xx, yy):
    a, b = rng.uniform(1, 3, 2)
    return 0.5 + 0.4 * np.sin(2 * np.pi * a * xx) * np.cos(2 * np.pi * b * yy)


def _saved(tmp_path, arch, size="tiny"):
    torch.manual_seed(0)
    net = registry.build(arch, scale=4, channels=1, size=size)
    settings = {"name": arch, "arch": arch, "channels": 1, "size": size, "overrides": {}}
    path = tmp_path / arch / "sr_model.pt"
    path.parent.mkdir(parents=True)
    save_sr_model(net, settings, 4, path)
    return net, path


@pytest.mark.parametrize("arch", ["bicubic", "rcan"])
def test_the_matched_cell_equals_the_method_jobs_own_scores(tmp_path, arch):
    data = write_tiny_sr_dataset(tmp_path / "data", _smooth, seed=0)
    net, model = _saved(tmp_path, arch)
    super_resolve(net, data / "x4" / "test_lr.npy", model.parent / "test.npy", torch.device("cpu"))
    own = score_method(data, 4, model.parent)
    score_on(model, data, data / "x4" / "test_lr.npy", 4, tmp_path / "cross.csv")
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "cross.csv"), pd.read_csv(model.parent / "test_metrics.csv")
    )
    assert len(own) == 3


def test_another_degradations_images_score_differently(tmp_path):
    data = write_tiny_sr_dataset(tmp_path / "data", _smooth, seed=0)
    _, model = _saved(tmp_path, "bicubic")
    hr = np.load(data / "test_hr.npy")
    write_shard(tmp_path / "kspace_test_lr.npy", degrade(hr, 4, "kspace", seed=0, snr=10))
    matched = score_on(model, data, data / "x4" / "test_lr.npy", 4, tmp_path / "a.csv")
    noisy = score_on(model, data, tmp_path / "kspace_test_lr.npy", 4, tmp_path / "b.csv")
    assert noisy < matched - 1.0  # SNR 10 Rician noise costs Bicubic well over a dB


def test_a_wrong_scale_or_shape_is_refused(tmp_path):
    data = write_tiny_sr_dataset(tmp_path / "data", _smooth, seed=0)
    _, model = _saved(tmp_path, "bicubic")
    write_shard(tmp_path / "x2.npy", np.zeros((3, 16, 16), np.float32))
    with pytest.raises(InputError, match="does not fit HR test shape"):
        score_on(model, data, tmp_path / "x2.npy", 4, tmp_path / "c.csv")
    with pytest.raises(InputError, match="the network is x4, the LR images x2"):
        score_on(model, data, tmp_path / "x2.npy", 2, tmp_path / "c.csv")
    assert not (tmp_path / "c.csv").exists()
