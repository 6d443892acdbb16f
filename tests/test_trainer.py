"""The shared trainer: stateless patch sampler, objectives, exact resume, checkpoints, logs."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import nn

from srda.data.degrade import downscale
from srda.errors import InputError
from srda.train import precision, trainer
from srda.train.data import PatchSampler, dihedral, load_split, prefetch
from srda.train.losses import joint_objective, pixel_loss, predict_sr, sr_objective
from srda.train.precision import resolve_flag, resolve_precision
from srda.train.trainer import TrainSettings, load_weights, lr_factor, train

SCALE = 2
HR_SIZE = 32
CLASSES = ["CN", "MCI", "AD"]


def _smooth_images(n: int, size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((n, size, size))
    smooth = ndimage.gaussian_filter(noise, sigma=(0, 2.0, 2.0), mode="wrap")
    lo = smooth.min(axis=(1, 2), keepdims=True)
    hi = smooth.max(axis=(1, 2), keepdims=True)
    return ((smooth - lo) / (hi - lo) * 0.8 + 0.1).astype(np.float32)


def _write_split(data_dir: Path, split: str, n: int, seed: int, labels=None) -> None:
    hr = _smooth_images(n, HR_SIZE, seed)
    np.save(data_dir / f"{split}_hr.npy", hr)
    (data_dir / f"x{SCALE}").mkdir(exist_ok=True)
    np.save(data_dir / f"x{SCALE}" / f"{split}_lr.npy", downscale(hr, SCALE))
    labels = labels or [CLASSES[i % len(CLASSES)] for i in range(n)]
    pd.DataFrame(
        {
            "index": range(n),
            "subject": [f"s{i:03d}" for i in range(n)],
            "image": [f"img{i}" for i in range(n)],
            "slice": [0] * n,
            "label": labels,
        }
    ).to_csv(data_dir / f"{split}_meta.csv", index=False)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    _write_split(d, "train", 8, seed=1)
    _write_split(d, "val", 3, seed=2)
    (d / "dataset.json").write_text(json.dumps({"name": "toy", "classes": CLASSES}))
    return d


class TinySR(nn.Module):
    def __init__(self, scale: int = SCALE) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, scale * scale, 3, padding=1)
        )
        self.up = nn.PixelShuffle(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.body(x))


class TinyDropSR(TinySR):
    """With dropout: exact resume then also needs the restored RNG state."""

    def __init__(self) -> None:
        super().__init__()
        self.drop = nn.Dropout2d(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.drop(self.body(x)))


class TinyJoint(nn.Module):
    """SR net plus a classifier, returning a dict like srda.models.joint.JointSRDA."""

    def __init__(self) -> None:
        super().__init__()
        self.sr_net = TinySR()
        self.head = nn.Linear(1, len(CLASSES))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        sr = self.sr_net(x)
        return {"sr": sr, "logits": self.head(sr.mean(dim=(1, 2, 3))[:, None])}


def _joint_loss(out, hr, labels, weight=0.1):
    l1 = F.l1_loss(out["sr"].float(), hr.float())
    ce = F.cross_entropy(out["logits"].float(), labels)
    return l1 + weight * ce, {"l1": l1, "ce": ce}


def _model(seed: int = 0, dropout: bool = False) -> TinySR:
    torch.manual_seed(seed)
    return TinyDropSR() if dropout else TinySR()


def _settings(**kw) -> TrainSettings:
    # fp32: the schema default (auto) would pick bf16 on a CPU with it; these test the loop
    base = dict(steps=12, batch_size=4, patch=16, lr=3e-3, val_every=4, seed=3, precision="fp32")
    base.update(kw)
    return TrainSettings(**base)


CPU = torch.device("cpu")
LOG = "train_log.csv"


# ---------------------------------------------------------------------------------------------
# Sampler


def _sampler(data_dir: Path, patch: int = 16, augment: bool = False, seed: int = 5):
    hr, lr, labels, classes = load_split(data_dir, "train", SCALE)
    return PatchSampler(hr, lr, labels, patch, SCALE, batch_size=6, seed=seed, augment=augment)


def test_load_split_maps_labels_and_memory_maps(data_dir: Path) -> None:
    hr, lr, labels, classes = load_split(data_dir, "train", SCALE)
    assert classes == CLASSES
    assert isinstance(hr, np.memmap) and isinstance(lr, np.memmap)
    assert hr.shape == (8, HR_SIZE, HR_SIZE) and lr.shape == (8, HR_SIZE // 2, HR_SIZE // 2)
    assert labels.tolist() == [i % 3 for i in range(8)]


def test_sampler_shapes_and_crop_coordinates(data_dir: Path) -> None:
    sampler = _sampler(data_dir)
    batch = sampler.batch(7)
    assert batch["lr"].shape == (6, 1, 8, 8) and batch["lr"].dtype == torch.float32
    assert batch["hr"].shape == (6, 1, 16, 16)
    assert batch["label"].dtype == torch.int64 and batch["label"].shape == (6,)
    plan = sampler.plan(7)
    for k, (i, y, x) in enumerate(zip(plan.index, plan.lr_y, plan.lr_x, strict=True)):
        np.testing.assert_array_equal(
            batch["lr"][k, 0].numpy(), sampler.lr[i, y : y + 8, x : x + 8]
        )
        hr_crop = sampler.hr[i, 2 * y : 2 * y + 16, 2 * x : 2 * x + 16]
        np.testing.assert_array_equal(batch["hr"][k, 0].numpy(), hr_crop)
        assert batch["label"][k] == sampler.labels[i]


def _interior_gap(batch: dict[str, torch.Tensor], margin: int = 3) -> float:
    """Max difference between the LR patches and the downscaled HR patches, away from the
    patch borders (where downscaling the patch alone mirrors pixels the full image had)."""
    lr = batch["lr"][:, 0].numpy()
    own = downscale(batch["hr"][:, 0].numpy(), SCALE)
    m = margin
    return float(np.abs(lr[:, m:-m, m:-m] - own[:, m:-m, m:-m]).max())


def test_lr_patch_is_the_downscaled_hr_patch(data_dir: Path) -> None:
    sampler = _sampler(data_dir, patch=24)
    batch = sampler.batch(0)
    assert _interior_gap(batch) < 1e-5
    # A one-pixel misalignment would be caught.
    shifted = dict(batch, hr=torch.roll(batch["hr"], shifts=SCALE, dims=-1))
    assert _interior_gap(shifted) > 1e-3


def test_augmentation_keeps_pairs_aligned(data_dir: Path) -> None:
    sampler = _sampler(data_dir, patch=24, augment=True)
    transforms = set()
    for step in range(4):
        transforms |= set(sampler.plan(step).transform.tolist())
        assert _interior_gap(sampler.batch(step)) < 1e-5
    assert len(transforms) > 2
    # plain = the same crops without the symmetry; the augmented batch is its transform.
    plain = _sampler(data_dir, patch=24, augment=False).batch(1)
    aug, plan = sampler.batch(1), sampler.plan(1)
    for k, t in enumerate(plan.transform):
        for key in ("lr", "hr"):
            np.testing.assert_array_equal(aug[key][k, 0], dihedral(plain[key][k, 0].numpy(), t))


def test_sampler_is_stateless(data_dir: Path) -> None:
    a, b = _sampler(data_dir, augment=True), _sampler(data_dir, augment=True)
    b.batch(3)  # drawing other batches first changes nothing
    for key in ("lr", "hr", "label"):
        assert torch.equal(a.batch(5)[key], b.batch(5)[key])
    assert not torch.equal(a.batch(5)["hr"], a.batch(6)["hr"])
    other_seed = _sampler(data_dir, augment=True, seed=6)
    assert not torch.equal(a.batch(5)["hr"], other_seed.batch(5)["hr"])


def test_sampler_rejects_bad_patch(data_dir: Path) -> None:
    hr, lr, labels, _ = load_split(data_dir, "train", SCALE)
    with pytest.raises(ValueError, match="multiple of the scale"):
        PatchSampler(hr, lr, labels, 15, SCALE, 2, 0)
    with pytest.raises(ValueError, match="larger than"):
        PatchSampler(hr, lr, labels, 64, SCALE, 2, 0)


def test_unknown_label_names_the_file(data_dir: Path) -> None:
    _write_split(data_dir, "val", 3, seed=2, labels=["CN", "XYZ", "AD"])
    with pytest.raises(InputError, match=r"val_meta\.csv.*'XYZ'.*dataset\.json"):
        load_split(data_dir, "val", SCALE)


# ---------------------------------------------------------------------------------------------
# Losses and settings


def test_pixel_losses() -> None:
    a, b = torch.zeros(2, 1, 4, 4), torch.full((2, 1, 4, 4), 0.5)
    assert pixel_loss("l1")(a, b).item() == pytest.approx(0.5)
    assert pixel_loss("l2")(a, b).item() == pytest.approx(0.25)
    with pytest.raises(ValueError, match="l1, l2"):
        pixel_loss("huber")
    loss, terms = sr_objective("l2")(nn.Identity(), {"lr": a, "hr": b})
    assert terms == {"l2": pytest.approx(0.25)} and loss.requires_grad is False


def test_settings_validation_and_schedules() -> None:
    with pytest.raises(ValueError, match="precision"):
        _settings(precision="fp8")
    with pytest.raises(ValueError, match="unknown train settings"):
        TrainSettings.from_dict({"steps": 1, "batch_size": 1, "patch": 8, "epochs": 3})
    cos = _settings(steps=10, schedule="cosine")
    assert lr_factor(cos, 0) == 1.0 and lr_factor(cos, 10) == pytest.approx(0.0)
    stp = _settings(steps=10, schedule="step", schedule_milestones=[6, 3])
    assert [lr_factor(stp, t) for t in (0, 3, 6)] == [1.0, 0.5, 0.25]


def test_fp16_needs_cuda(data_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="CUDA"):
        train(
            _model(),
            sr_objective(),
            None,
            data_dir,
            SCALE,
            _settings(precision="fp16"),
            tmp_path / "run",
            CPU,
        )


# ---------------------------------------------------------------------------------------------
# Training


def test_training_reduces_the_loss(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    summary = train(
        _model(),
        sr_objective("l1"),
        predict_sr,
        data_dir,
        SCALE,
        _settings(steps=30, val_every=10),
        out,
        CPU,
    )
    assert summary["trained"] and summary["steps"] == 30
    log = pd.read_csv(out / "train_log.csv")
    assert list(log.columns) == ["step", "loss", "l1", "lr", "seconds", "val_psnr"]
    assert log["step"].tolist() == list(range(1, 31))
    assert log["loss"].iloc[-5:].mean() < 0.5 * log["loss"].iloc[:5].mean()
    assert log["val_psnr"].notna().sum() == 3
    assert summary["best_val_psnr"] == pytest.approx(log["val_psnr"].max())
    assert summary["best_step"] == int(log.loc[log["val_psnr"].idxmax(), "step"])


class _Crash(Exception):
    pass


def _crash_at(objective, call: int):
    calls = {"n": 0}

    def wrapped(model, batch):
        calls["n"] += 1
        if calls["n"] == call:
            raise _Crash
        return objective(model, batch)

    return wrapped


@pytest.mark.parametrize("dropout", [False, True])
def test_resume_equals_uninterrupted_run(data_dir: Path, tmp_path: Path, dropout: bool) -> None:
    settings = _settings(steps=12, val_every=4, schedule="cosine", augment=True, grad_clip=1.0)
    whole, split = tmp_path / "whole", tmp_path / "split"
    model_a = _model(dropout=dropout)
    train(model_a, sr_objective(), None, data_dir, SCALE, settings, whole, CPU)

    # Dies in step 7: last.pt is at step 4, the log already has rows 5 and 6.
    with pytest.raises(_Crash):
        train(
            _model(dropout=dropout),
            _crash_at(sr_objective(), 7),
            None,
            data_dir,
            SCALE,
            settings,
            split,
            CPU,
        )
    assert pd.read_csv(split / "train_log.csv")["step"].max() == 6
    assert torch.load(split / "checkpoints" / "last.pt", weights_only=True)["step"] == 4

    model_b = _model(
        seed=123, dropout=dropout
    )  # other initial weights: everything must come from last.pt
    summary = train(model_b, sr_objective(), None, data_dir, SCALE, settings, split, CPU)
    assert summary["resumed_from"] == 4 and summary["steps"] == 12

    state_a, state_b = model_a.state_dict(), model_b.state_dict()
    assert state_a.keys() == state_b.keys()
    for key in state_a:
        assert torch.equal(state_a[key], state_b[key]), key
    log_a = pd.read_csv(whole / "train_log.csv")
    log_b = pd.read_csv(split / "train_log.csv")
    assert log_b["step"].tolist() == list(range(1, 13))  # no duplicated steps
    for col in ("loss", "l1", "lr", "val_psnr"):
        pd.testing.assert_series_equal(log_a[col], log_b[col])
    best_a = torch.load(whole / "checkpoints" / "best.pt", weights_only=True)
    best_b = torch.load(split / "checkpoints" / "best.pt", weights_only=True)
    assert best_a["step"] == best_b["step"] and best_a["val_psnr"] == best_b["val_psnr"]

    # A finished run asked again does nothing and reports the same result.
    again = train(
        _model(dropout=dropout), sr_objective(), None, data_dir, SCALE, settings, split, CPU
    )
    assert again["steps"] == 12 and again["best_val_psnr"] == summary["best_val_psnr"]
    assert len(pd.read_csv(split / "train_log.csv")) == 12


def _counting(objective):
    """The objective, counting its calls (the steps a run actually trained)."""

    def wrapped(model, batch):
        wrapped.calls += 1
        return objective(model, batch)

    wrapped.calls = 0
    return wrapped


def _assert_same_run(model_a, model_b, log_a: Path, log_b: Path) -> None:
    for key, value in model_a.state_dict().items():
        assert torch.equal(value, model_b.state_dict()[key]), key
    a, b = pd.read_csv(log_a), pd.read_csv(log_b)
    assert a["step"].tolist() == b["step"].tolist()
    for col in ("loss", "l1", "lr"):
        pd.testing.assert_series_equal(a[col], b[col])


@pytest.mark.parametrize(
    "schedule", [{}, {"schedule": "step", "schedule_milestones": [3, 9], "schedule_gamma": 0.5}]
)
def test_raised_steps_continue_and_equal_a_fresh_run_of_the_raised_count(
    data_dir: Path, tmp_path: Path, schedule: dict
) -> None:
    long, out = _settings(steps=12, val_every=4, **schedule), tmp_path / "raised"
    fresh_model, _ = _run(data_dir, tmp_path / "fresh", long)
    _run(data_dir, out, replace(long, steps=6))
    objective = _counting(sr_objective())
    model, summary = _run(data_dir, out, long, seed=5, objective=objective)
    assert summary["resumed_from"] == 6 and summary["steps"] == 12
    assert objective.calls == 6  # only the new steps ran
    _assert_same_run(fresh_model, model, tmp_path / "fresh" / "train_log.csv", out / LOG)
    val = pd.read_csv(out / LOG).dropna(subset=["val_psnr"])["step"].tolist()
    assert val == [4, 6, 8, 12]  # the log goes on; the shorter run's last step was validated


def test_a_raised_count_that_changes_the_schedule_starts_fresh(
    data_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "run"
    for schedule in ("cosine", "step"):  # step: the default milestone steps // 2, passed at 6
        settings = _settings(steps=6, val_every=3, schedule=schedule)
        _run(data_dir, out, settings)
        caplog.clear()
        with caplog.at_level("INFO", logger="srda.train.checkpoint"):
            _, summary = _run(data_dir, out, replace(settings, steps=10))
        assert summary["resumed_from"] is None, schedule
        assert f"steps 6 -> 10 changes the learning rate the {schedule} schedule" in caplog.text
        assert pd.read_csv(out / LOG)["step"].tolist() == list(range(1, 11))
    # A run interrupted before its default milestone (8 // 2) took its steps at the rates a
    # raised count gives them too: it continues.
    early = _settings(steps=8, val_every=2, schedule="step")
    with pytest.raises(_Crash):
        _run(data_dir, out, early, objective=_crash_at(sr_objective(), 3))
    assert _run(data_dir, out, replace(early, steps=20))[1]["resumed_from"] == 2


def test_a_changed_trajectory_setting_starts_fresh_and_says_which(
    data_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "run"
    settings = _settings(steps=4, val_every=2)
    _run(data_dir, out, settings, recipe={"arch": "tiny"})
    new = replace(settings, lr=6e-3, batch_size=2)
    cases = [
        (replace(settings, lr=6e-3), {"arch": "tiny"}, "lr 0.003 -> 0.006"),
        (new, {"arch": "tiny"}, "batch_size 4 -> 2"),
        (new, {"arch": "other"}, "recipe {'arch': 'tiny'}"),
    ]
    for changed, recipe, reason in cases:
        caplog.clear()
        with caplog.at_level("INFO", logger="srda.train.checkpoint"):
            _, summary = _run(data_dir, out, changed, recipe=recipe)
        assert summary["resumed_from"] is None and "starts fresh" in caplog.text
        assert reason in caplog.text, caplog.text
    # the fresh run is a fresh run: the same as one in an empty folder
    model_a, _ = _run(data_dir, out, new)
    model_b, _ = _run(data_dir, tmp_path / "empty", new)
    _assert_same_run(model_a, model_b, out / LOG, tmp_path / "empty" / LOG)
    # lowered below the checkpoint's step: fresh too; a setting that only says how often to
    # validate resumes
    caplog.clear()
    with caplog.at_level("INFO", logger="srda.train.checkpoint"):
        _, summary = _run(data_dir, out, replace(new, steps=2))
    assert summary["resumed_from"] is None and "steps lowered to 2" in caplog.text
    assert _run(data_dir, out, replace(new, steps=2, val_every=1))[1]["resumed_from"] == 2


def test_changed_training_data_starts_fresh(
    data_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out, settings = tmp_path / "run", _settings(steps=2, val_every=2)
    _run(data_dir, out, settings)
    _write_split(data_dir, "train", 8, seed=9)  # the cohort remade: same shapes, other images
    with caplog.at_level("INFO", logger="srda.train.checkpoint"):
        _, summary = _run(data_dir, out, settings)
    assert summary["resumed_from"] is None and "the training data changed" in caplog.text


def test_checkpoints_load_weights_only(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    summary = train(
        _model(),
        sr_objective(),
        None,
        data_dir,
        SCALE,
        _settings(steps=6, val_every=3, checkpoint_every=2),
        out,
        CPU,
    )
    last = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    assert last["step"] == 6 and set(last) >= {"model", "optimizer", "scheduler", "rng"}
    best = torch.load(out / "checkpoints" / "best.pt", weights_only=True)
    assert best["step"] in (3, 6) and best["val_psnr"] == summary["best_val_psnr"]
    assert summary["weights"] == str(out / "checkpoints" / "best.pt")
    assert not list((out / "checkpoints").glob("*.tmp"))

    fresh = _model(seed=9)
    info = load_weights(fresh, out / "checkpoints" / "best.pt")
    assert info == {"step": best["step"], "val_psnr": best["val_psnr"]}
    for key, value in best["model"].items():
        assert torch.equal(fresh.state_dict()[key], value)


def test_joint_model_with_dict_output(data_dir: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = TinyJoint()
    out = tmp_path / "run"
    summary = train(
        model,
        joint_objective(_joint_loss, weight=0.5),
        predict_sr,
        data_dir,
        SCALE,
        _settings(steps=4, val_every=2),
        out,
        CPU,
    )
    assert summary["trained"] and summary["best_val_psnr"] is not None
    log = pd.read_csv(out / "train_log.csv")
    assert list(log.columns) == ["step", "loss", "l1", "ce", "lr", "seconds", "val_psnr"]
    np.testing.assert_allclose(log["loss"], log["l1"] + 0.5 * log["ce"], rtol=1e-5)


def test_bf16_autocast_on_cpu(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    model = _model()
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    summary = train(
        model,
        sr_objective(),
        None,
        data_dir,
        SCALE,
        _settings(steps=3, val_every=3, precision="bf16", channels_last=True),
        out,
        CPU,
    )
    log = pd.read_csv(out / "train_log.csv")
    assert np.isfinite(log["loss"]).all() and np.isfinite(summary["best_val_psnr"])
    # autocast computes in bf16; the trained weights, in memory and on disk, stay fp32
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert any(not torch.equal(v, initial[k]) for k, v in model.state_dict().items())
    saved = torch.load(out / "checkpoints" / "last.pt", weights_only=True)["model"]
    assert {v.dtype for v in saved.values() if v.is_floating_point()} == {torch.float32}


def test_nothing_to_train(data_dir: Path, tmp_path: Path) -> None:
    summary = train(
        _model(), sr_objective(), None, data_dir, SCALE, _settings(steps=0), tmp_path / "a", CPU
    )
    assert summary["trained"] is False and "steps" in summary["reason"]
    frozen = _model()
    for p in frozen.parameters():
        p.requires_grad_(False)
    summary = train(frozen, sr_objective(), None, data_dir, SCALE, _settings(), tmp_path / "b", CPU)
    assert summary["trained"] is False and "no trainable" in summary["reason"]
    assert not (tmp_path / "b" / "checkpoints").exists()


# --------------------------------------------------------------------------------------------
# The GPU path (prefetch workers, pinned memory, auto precision), exercised on the CPU


@pytest.mark.parametrize("workers", [0, 1, 3])
def test_prefetch_yields_the_samplers_batches_in_order(data_dir: Path, workers: int) -> None:
    sampler = _sampler(data_dir, augment=True)
    got = list(prefetch(sampler, 4, 11, workers=workers))
    assert len(got) == 8
    for step, batch in zip(range(4, 12), got, strict=True):
        want = sampler.batch(step)
        for key in want:
            torch.testing.assert_close(batch[key], want[key], rtol=0, atol=0)
    assert list(prefetch(sampler, 5, 4, workers=workers)) == []
    with pytest.raises(ValueError, match="workers"):
        next(prefetch(sampler, 1, 2, workers=-1))


def _loss_log(data_dir: Path, out: Path, **kw) -> pd.DataFrame:
    settings = _settings(steps=6, val_every=3, augment=True, **kw)
    summary = train(_model(), sr_objective(), None, data_dir, SCALE, settings, out, CPU)
    log = pd.read_csv(out / "train_log.csv")
    return log.assign(summary=[summary] * len(log))


def test_loader_workers_and_pinning_do_not_change_training(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = {"n": 0}

    def fake_pin(self: torch.Tensor) -> torch.Tensor:  # no accelerator here: count, copy
        calls["n"] += 1
        return self.clone()

    plain = _loss_log(data_dir, tmp_path / "plain", loader_workers=0, pin_memory=False)
    monkeypatch.setattr(torch.Tensor, "pin_memory", fake_pin)
    ahead = _loss_log(data_dir, tmp_path / "ahead", loader_workers=3, pin_memory=True)
    assert calls["n"] == 6 * 3  # every batch's lr, hr and label
    np.testing.assert_array_equal(plain["loss"], ahead["loss"])
    summary = ahead["summary"].iloc[0]
    assert summary["pin_memory"] is True and summary["loader_workers"] == 3
    assert plain["summary"].iloc[0]["pin_memory"] is False


def test_auto_settings_resolve_per_device(monkeypatch: pytest.MonkeyPatch) -> None:
    cuda = torch.device("cuda")
    monkeypatch.setattr(precision, "native_bf16", lambda device: False)
    assert resolve_precision("auto", CPU) == "fp32"
    assert resolve_precision("auto", cuda) == "fp16"  # pre-Ampere GPU: fp16 with a scaler
    assert resolve_precision("bf16", CPU) == "bf16"  # an explicit choice is kept
    monkeypatch.setattr(precision, "native_bf16", lambda device: True)
    assert resolve_precision("auto", CPU) == "bf16"
    assert resolve_precision("auto", cuda) == "bf16"
    assert resolve_flag("auto", cuda) is True and resolve_flag("auto", CPU) is False
    assert resolve_flag("auto", CPU, on_cpu=True) is True  # channels_last on a CPU
    assert resolve_flag(True, CPU) is True and resolve_flag(False, cuda) is False
    with pytest.raises(ValueError, match="pin_memory"):
        _settings(pin_memory="yes")
    with pytest.raises(ValueError, match="loader_workers"):
        _settings(loader_workers=-1)


@pytest.mark.parametrize(
    ("flags", "onednn", "native"),
    [
        ("fpu sse avx2 avx512f avx512_bf16", True, True),  # AVX512-BF16 (Zen 4, Cooper Lake)
        ("fpu avx2 avx512f amx_bf16 amx_tile", True, True),  # AMX (Sapphire Rapids)
        ("fpu sse avx2 avx512f avx512bw", True, False),  # AVX512 only: oneDNN emulates bf16
        ("fpu sse avx2 fma", False, False),  # AVX2 only
    ],
)
def test_native_bf16_needs_a_bf16_instruction_not_only_onednn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flags: str, onednn: bool, native: bool
) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n\nprocessor\t: 1\nflags\t: {flags}\n")
    monkeypatch.setattr(precision, "onednn_bf16", lambda: onednn)
    assert precision.native_bf16(CPU, cpuinfo=str(cpuinfo)) is native
    # without readable flags (not Linux) oneDNN's answer stands
    assert precision.native_bf16(CPU, cpuinfo=str(tmp_path / "absent")) is onednn


def test_auto_training_on_this_cpu_records_what_it_ran(data_dir: Path, tmp_path: Path) -> None:
    log = _loss_log(data_dir, tmp_path / "auto", precision="auto", channels_last="auto")
    summary = log["summary"].iloc[0]
    expected = "bf16" if precision.native_bf16(CPU) else "fp32"
    assert summary["precision"] == expected
    assert summary["channels_last"] is precision.CPU_CHANNELS_LAST
    saved = torch.load(tmp_path / "auto" / "checkpoints" / "last.pt", weights_only=True)
    assert saved["settings"]["precision"] == expected


# --------------------------------------------------------------------------------------------
# Early stop on a validation plateau (until_plateau)


class _Scripted:
    """A validation curve given in advance: the k-th call of ``validate`` scores ``scores[k]``
    (whatever the weights). One object across an interrupted and a resumed run continues the
    curve where the interrupted run left it."""

    def __init__(self, scores: list[float]) -> None:
        self.scores, self.calls = list(scores), 0

    def __call__(self, *args, **kwargs) -> float:
        value = self.scores[self.calls]
        self.calls += 1
        return value


def _never(*args, **kwargs) -> float:
    raise AssertionError("validate called by a run that had nothing to train")


# Validations every 4 steps, cap 48. With patience 2: 12 ties 8 (1 since the best), 16 is a new
# best (0), 20 is lower (1), 24 ties 16 (2): the run stops at step 24 with the model of step 16.
CURVE = [10.0, 11.0, 11.0, 12.0, 11.5, 12.0, 13.0, 13.0, 13.0, 13.0, 13.0, 13.0]


def _plateau_settings(**kw) -> TrainSettings:
    base = dict(steps=48, val_every=4, until_plateau=True, patience=2)
    return _settings(**(base | kw))


def _run(
    data_dir: Path, out: Path, settings: TrainSettings, seed: int = 0, objective=None, recipe=None
):
    objective = objective or sr_objective()
    model = _model(seed=seed)
    return model, train(model, objective, None, data_dir, SCALE, settings, out, CPU, recipe)


def test_until_plateau_stops_at_the_expected_step(data_dir, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(trainer, "validate", _Scripted(CURVE))
    _, summary = _run(data_dir, tmp_path / "run", _plateau_settings())
    assert summary["stopped_early"] is True and summary["stopped_at_step"] == 24
    assert summary["steps"] == 24  # completed steps
    assert summary["best_step"] == 16 and summary["best_val_psnr"] == 12.0
    log = pd.read_csv(tmp_path / "run" / "train_log.csv")
    assert log["step"].tolist() == list(range(1, 25))
    assert log["val_psnr"].dropna().tolist() == CURVE[:6]
    last = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)
    assert last["step"] == 24 and last["plateau"] == {
        "since_best": 2,
        "stopped_at": 24,
        "longest_before_last": 1,
        "last_val_step": 24,
    }
    best = torch.load(tmp_path / "run" / "checkpoints" / "best.pt", weights_only=True)
    assert best["step"] == 16 and summary["weights"].endswith("best.pt")


@pytest.mark.parametrize(
    ("kw", "stop", "best_step"),
    [
        ({"until_plateau": False}, None, 28),  # off: all 48 steps, whatever the curve
        ({"patience": 3}, 40, 28),  # 32, 36, 40, ... tie 28's best: the 3rd of them is at 40
        ({"patience": 4}, 44, 28),
        ({"patience": 5}, None, 28),  # would be due at 48, the cap: not an early stop
    ],
)
def test_until_plateau_off_or_patient_runs_longer(
    data_dir, tmp_path, monkeypatch, kw, stop, best_step
) -> None:
    monkeypatch.setattr(trainer, "validate", _Scripted(CURVE))
    _, summary = _run(data_dir, tmp_path / "run", _plateau_settings(**kw))
    assert summary["stopped_early"] is (stop is not None)
    assert summary["stopped_at_step"] == stop
    assert summary["steps"] == (stop or 48) and summary["best_step"] == best_step
    assert len(pd.read_csv(tmp_path / "run" / "train_log.csv")) == (stop or 48)


def test_until_plateau_resumes_exactly(data_dir, tmp_path, monkeypatch) -> None:
    settings = _plateau_settings(augment=True)
    whole, split = tmp_path / "whole", tmp_path / "split"
    monkeypatch.setattr(trainer, "validate", _Scripted(CURVE))
    model_a, summary_a = _run(data_dir, whole, settings)

    # Dies in step 23: last.pt is at step 20, one validation after the best (16).
    curve = _Scripted(CURVE)
    monkeypatch.setattr(trainer, "validate", curve)
    with pytest.raises(_Crash):
        _run(data_dir, split, settings, objective=_crash_at(sr_objective(), 23))
    saved = torch.load(split / "checkpoints" / "last.pt", weights_only=True)
    assert saved["step"] == 20 and saved["plateau"] == {
        "since_best": 1,
        "stopped_at": None,
        "longest_before_last": 1,
        "last_val_step": 20,
    }
    # Had the count been lost, the resumed run would stop at 36 (three ties after 28's best).
    model_b, summary_b = _run(data_dir, split, settings, seed=123)
    assert summary_b["resumed_from"] == 20
    for key in ("steps", "stopped_early", "stopped_at_step", "best_step", "best_val_psnr"):
        assert summary_b[key] == summary_a[key], key
    assert summary_b["stopped_at_step"] == 24
    for key, value in model_a.state_dict().items():
        assert torch.equal(value, model_b.state_dict()[key]), key
    log_a, log_b = pd.read_csv(whole / "train_log.csv"), pd.read_csv(split / "train_log.csv")
    assert log_b["step"].tolist() == list(range(1, 25))
    for col in ("loss", "l1", "lr", "val_psnr"):
        pd.testing.assert_series_equal(log_a[col], log_b[col])
    last_a = torch.load(whole / "checkpoints" / "last.pt", weights_only=True)
    last_b = torch.load(split / "checkpoints" / "last.pt", weights_only=True)
    assert last_a["plateau"] == last_b["plateau"]
    assert last_b["plateau"]["stopped_at"] == 24

    # Asked again: stopped runs stay stopped, nothing is trained or validated.
    monkeypatch.setattr(trainer, "validate", _never)
    _, again = _run(data_dir, split, settings)
    assert again["steps"] == 24 and again["stopped_at_step"] == 24
    assert again["best_step"] == 16 and len(pd.read_csv(split / "train_log.csv")) == 24

    # With until_plateau off the same run trains on to its cap.
    monkeypatch.setattr(trainer, "validate", _Scripted(CURVE[6:]))
    _, on = _run(data_dir, split, replace(settings, until_plateau=False))
    assert on["steps"] == 48 and on["stopped_early"] is False and on["best_step"] == 28
    assert pd.read_csv(split / "train_log.csv")["step"].tolist() == list(range(1, 49))

    # Switched on again after that: it would have stopped at 24, so the run starts over and
    # ends as a fresh run does (not at its cap with step 28's model).
    monkeypatch.setattr(trainer, "validate", _Scripted(CURVE))
    model_c, again_on = _run(data_dir, split, settings)
    assert again_on["resumed_from"] is None
    for key in ("steps", "stopped_early", "stopped_at_step", "best_step", "best_val_psnr"):
        assert again_on[key] == summary_a[key], key
    for key, value in model_a.state_dict().items():
        assert torch.equal(value, model_c.state_dict()[key]), key
    assert pd.read_csv(split / "train_log.csv")["step"].tolist() == list(range(1, 25))


def test_patience_must_be_a_positive_count() -> None:
    for bad in (0, -1, 1.5):
        with pytest.raises(ValueError, match="patience"):
            _settings(patience=bad)
    assert TrainSettings.from_dict(
        {"steps": 1, "batch_size": 1, "patch": 8, "until_plateau": True, "patience": 1}
    ).until_plateau


def test_plateau_replay_on_a_logged_curve() -> None:
    from srda.train.plateau import replay

    steps = [4 * (k + 1) for k in range(len(CURVE))]  # CURVE at 4, 8, ..., 48 (cap 48)
    out = replay(steps, CURVE, patience=2, cap=48)
    assert out == {
        "stopped_at": 24,
        "steps_run": 24,
        "best_step": 16,
        "best_step_without": 28,  # 13.0 at 28: the stop at 24 would keep another model
        "same_model": False,
    }
    late = replay(steps, CURVE, patience=5, cap=48)
    assert late["stopped_at"] is None and late["steps_run"] == 48 and late["same_model"]
    # 100 / 200 / 300 of 300 with patience 1: stops at 200 when 200 is no better than 100
    assert replay([100, 200, 300], [0.6, 0.6, 0.7], 1, 300)["stopped_at"] == 200
    assert replay([100, 200, 300], [0.6, 0.65, 0.7], 1, 300)["stopped_at"] is None


def test_a_stricter_stopping_rule_restarts_only_a_run_it_would_have_stopped_earlier() -> None:
    from srda.train.plateau import Plateau, restart_needed

    plateau = Plateau(False, 5)
    for step, score in zip(range(4, 52, 4), CURVE, strict=True):
        plateau.observe(step, score)
    counts = plateau.counts()  # at 48: the longest wait was 5 validations (28 to 48)
    assert counts["longest_before_last"] == 4 and counts["since_best"] == 5
    assert restart_needed(True, 2, counts, 48)  # would have stopped at 24
    assert restart_needed(True, 4, counts, 48)  # at 44
    assert not restart_needed(True, 5, counts, 48)  # due only at 48, the cap: same run
    assert not restart_needed(False, 1, counts, 48)  # off: nothing stops
    assert restart_needed(True, 5, counts, 52)  # a checkpoint after the last validation
    assert not restart_needed(True, 2, None, 48)  # no counts saved: nothing to judge
    with pytest.raises(ValueError, match="until_plateau needs val_every"):
        _settings(until_plateau=True, val_every=0)


def test_csv_log_widens_keeps_text_and_resumes_from_a_checkpoints_copy(tmp_path: Path) -> None:
    from srda.train.csvlog import CsvLog

    path = tmp_path / "log.csv"
    log = CsvLog(path).start()
    log.append({"step": 1, "loss": 0.1, "val": None})
    log.append({"step": 2, "loss": 1 / 3, "val": 5.0, "extra": 7})  # a later term widens
    assert path.read_text().splitlines() == [
        "step,loss,val,extra",
        "1,0.1,,",
        f"2,{1 / 3!r},5.0,7",
    ]
    saved = log.text()
    log.append({"step": 3, "loss": 0.2})
    path.unlink()  # as Snakemake removes a declared output before a rerun
    again = CsvLog(path).start(resume_step=2, saved=saved)
    again.append({"step": 3, "loss": 0.25})
    assert pd.read_csv(path)["loss"].tolist() == [0.1, 1 / 3, 0.25]
    fixed = CsvLog(tmp_path / "fixed.csv", columns=("step", "loss")).start()
    assert (tmp_path / "fixed.csv").read_text().strip() == "step,loss"  # header at once
    with pytest.raises(ValueError, match="not among"):
        fixed.append({"step": 1, "acc": 0.5})
    with pytest.raises(InputError, match="columns"):
        CsvLog(tmp_path / "fixed.csv", columns=("step", "acc")).start(resume_step=1)
