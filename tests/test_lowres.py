"""LR shards of a prepared dataset under a registered degradation (srda.data.lowres)."""

import json

import numpy as np
import pandas as pd
import pytest

from srda.data.degrade import degrade, downscale
from srda.data.lowres import write_degraded
from srda.errors import InputError
from srda.shards import read_shard, write_shard

SIZES = {"train": 6, "val": 2, "test": 3}


def _dataset(root, modality="pet", pixel_mm=(2.0, 2.0, 2.0, 1.5, 1.5, 1.5), flat=False):
    """A data stage's folder: 32x32 HR per split, two 'volumes' in train with their own pixel
    side (the others one volume each), and dataset.json's modality."""
    rng = np.random.default_rng(0)
    for split, n in SIZES.items():
        hr = np.full((n, 32, 32), 0.5, np.float32) if flat else rng.random((n, 32, 32))
        write_shard(root / f"{split}_hr.npy", hr.astype(np.float32))
        px = list(pixel_mm) if split == "train" else [pixel_mm[0]] * n
        pd.DataFrame(
            {
                "index": range(n),
                "subject": [f"{split}{i // 3}" for i in range(n)],
                "image": [f"{split}{i // 3}" for i in range(n)],
                "slice": range(n),
                "label": "CN",
                "pixel_mm": px,
            }
        ).to_csv(root / f"{split}_meta.csv", index=False)
    (root / "dataset.json").write_text(json.dumps({"name": "toy", "modality": modality}))
    return root


def test_bicubic_equals_the_data_stages_lr(tmp_path):
    data = _dataset(tmp_path / "toy", modality="mri")
    record = write_degraded(data, 4, "bicubic", {}, 0, tmp_path / "out")
    for split in SIZES:
        hr = read_shard(data / f"{split}_hr.npy")
        np.testing.assert_array_equal(
            read_shard(tmp_path / "out" / f"{split}_lr.npy"), downscale(hr, 4)
        )
    assert record["kind"] == "bicubic" and not record["stochastic"]
    assert json.loads((tmp_path / "out" / "degradation.json").read_text()) == record


def test_pet_takes_each_volumes_pixel_side_and_numbers_images_across_splits(tmp_path):
    data = _dataset(tmp_path / "toy")
    params = {"dose": 0.25, "fwhm_mm": 6.0}
    write_degraded(data, 4, "pet", params, 7, tmp_path / "out")
    train = read_shard(data / "train_hr.npy")
    got = read_shard(tmp_path / "out" / "train_lr.npy")
    # the first volume at 2 mm from noise index 0, the second at 1.5 mm from index 3
    np.testing.assert_array_equal(got[:3], degrade(train[:3], 4, "pet", 7, voxel_mm=2.0, **params))
    np.testing.assert_array_equal(
        got[3:], degrade(train[3:], 4, "pet", 7, first_index=3, voxel_mm=1.5, **params)
    )
    # val continues the numbering after train's 6 images
    val = read_shard(data / "val_hr.npy")
    np.testing.assert_array_equal(
        read_shard(tmp_path / "out" / "val_lr.npy"),
        degrade(val, 4, "pet", 7, first_index=6, voxel_mm=2.0, **params),
    )


def test_every_image_draws_its_own_noise_and_the_seed_fixes_it(tmp_path):
    data = _dataset(tmp_path / "toy", flat=True)
    write_degraded(data, 4, "pet", {"dose": 0.1}, 0, tmp_path / "a")
    write_degraded(data, 4, "pet", {"dose": 0.1}, 0, tmp_path / "b")
    write_degraded(data, 4, "pet", {"dose": 0.1}, 1, tmp_path / "c")
    a = np.concatenate([read_shard(tmp_path / "a" / f"{s}_lr.npy") for s in SIZES])
    b = np.concatenate([read_shard(tmp_path / "b" / f"{s}_lr.npy") for s in SIZES])
    c = np.concatenate([read_shard(tmp_path / "c" / f"{s}_lr.npy") for s in SIZES])
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # equal flat HR images in every split, yet no two LR images share their noise
    flat = a.reshape(len(a), -1)
    assert len({row.tobytes() for row in flat}) == len(flat)


def test_a_model_that_does_not_fit_the_modality_is_refused_naming_dataset_json(tmp_path):
    data = _dataset(tmp_path / "toy", modality="pet")
    with pytest.raises(InputError) as err:
        write_degraded(data, 4, "kspace", {}, 0, tmp_path / "out")
    assert "dataset.json" in str(err.value) and "models MRI acquisition" in str(err.value)
    assert not (tmp_path / "out").exists()
    with pytest.raises(InputError, match="has no parameter 'snr'"):
        write_degraded(data, 4, "pet", {"snr": 20}, 0, tmp_path / "out")


def test_pet_without_pixel_sizes_is_refused_unless_voxel_mm_is_given(tmp_path):
    data = _dataset(tmp_path / "toy", pixel_mm=[np.nan] * 6)
    with pytest.raises(InputError) as err:
        write_degraded(data, 4, "pet", {}, 0, tmp_path / "out")
    assert "train_meta.csv" in str(err.value) and "pixel_mm" in str(err.value)
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]  # nothing staged left
    record = write_degraded(data, 4, "pet", {"voxel_mm": 1.0}, 0, tmp_path / "out")
    assert record["params"]["voxel_mm"] == 1.0 and record["from_meta"] == {}


def test_kspace_on_mri_keeps_the_hr_scale(tmp_path):
    data = _dataset(tmp_path / "toy", modality="mri", flat=True)
    write_degraded(data, 4, "kspace", {}, 0, tmp_path / "out")
    lr = read_shard(tmp_path / "out" / "test_lr.npy")
    assert lr.shape == (3, 8, 8)
    np.testing.assert_allclose(lr, 0.5, atol=1e-5)  # a flat image stays flat at its level


def test_the_degrade_command_writes_the_shards_or_ends_in_one_line(tmp_path, capsys):
    from srda.cli import main

    data = _dataset(tmp_path / "toy", modality="mri")
    settings = json.dumps({"kind": "kspace", "params": {"snr": 30}, "seed": 0})
    args = ["degrade", "--settings", settings, "--data", str(data), "--scale", "4"]
    assert main([*args, "--out", str(tmp_path / "ok")]) == 0
    assert read_shard(tmp_path / "ok" / "train_lr.npy").shape == (6, 8, 8)
    bad = json.dumps({"kind": "pet", "params": {}, "seed": 0})
    args[2] = bad
    assert main([*args, "--out", str(tmp_path / "bad")]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("srda-bench degrade: error:") and "models PET acquisition" in last
