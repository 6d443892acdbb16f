"""The downstream classifier (tiny runs, one torch thread) and its metrics (known answers)."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from srda.diagnosis import (
    ClassifierSettings,
    SplitData,
    classification_metrics,
    confusion_matrix,
    evaluate_predictions,
    fit_and_predict,
    load_classifier,
    mcnemar_between,
    read_predictions,
    run_diagnosis,
    subject_predictions,
)
from srda.diagnosis.classifier import BatchSampler, permute_labels_by_subject, predict_proba
from srda.diagnosis.metrics import (
    balanced_accuracy,
    confusion_table,
    macro_f1,
    ovr_auc,
    vote,
)
from srda.errors import InputError
from srda.stats import cluster_bootstrap_ci
from srda.train import precision
from srda.train.precision import native_bf16


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def blobs(n: int, size: int, seed: int) -> SplitData:
    """Class = where a bright square sits: top half (a) or bottom half (b). Two slices per
    subject, both of the same class."""
    rng = np.random.default_rng(seed)
    labels = (np.arange(n) // 2) % 2
    images = rng.normal(0.2, 0.05, (n, size, size))
    half, side = size // 2, max(2, size // 8)
    for i, label in enumerate(labels):
        y = rng.integers(0, half - side + 1) + (half if label else 0)
        x = rng.integers(0, size - side + 1)
        images[i, y : y + side, x : x + side] = 1.0
    meta = pd.DataFrame({"index": np.arange(n), "subject": [f"s{seed}_{i // 2}" for i in range(n)]})
    return SplitData(np.clip(images, 0, 1).astype(np.float32), labels, meta)


CLASSES = ["a", "b"]


def tiny(**overrides) -> ClassifierSettings:
    values = {"depth": 18, "steps": 4, "batch_size": 4, "val_every": 2, "bn_batches": 2}
    return ClassifierSettings(**(values | overrides))


# --------------------------------------------------------------------------------------------
# Classifier


def test_learns_a_separable_toy_problem(tmp_path):
    settings = ClassifierSettings(depth=18, steps=30, batch_size=8, val_every=10, bn_batches=8)
    result = fit_and_predict(
        blobs(64, 32, 0), blobs(16, 32, 1), blobs(32, 32, 2), CLASSES, settings, tmp_path
    )
    assert result.summary["test_acc"] >= 0.75  # chance: 0.5
    frame, classes = read_predictions(tmp_path / "predictions.csv")
    assert classes == CLASSES
    assert list(frame.columns) == ["index", "subject", "label", "pred", "prob_a", "prob_b"]
    assert len(frame) == 32 and (frame["index"] == np.arange(32)).all()
    assert np.allclose(frame[["prob_a", "prob_b"]].sum(axis=1), 1.0)
    log = pd.read_csv(tmp_path / "classifier_log.csv")
    assert list(log["step"]) == list(range(1, 31))
    assert log["val_balanced_acc"].notna().sum() == 3
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["select_on"] == "balanced_acc" and summary["best_step"] in (10, 20, 30)
    assert (tmp_path / "val_predictions.csv").exists()


def test_same_seed_same_predictions_and_weights_only_checkpoints(tmp_path):
    args = (blobs(16, 16, 0), blobs(8, 16, 1), blobs(8, 16, 2), CLASSES)
    first = fit_and_predict(*args, tiny(seed=3), tmp_path / "a")
    second = fit_and_predict(*args, tiny(seed=3), tmp_path / "b")
    other = fit_and_predict(*args, tiny(seed=4), tmp_path / "c")
    pd.testing.assert_frame_equal(first.frame, second.frame)
    assert (tmp_path / "a" / "predictions.csv").read_bytes() == (
        tmp_path / "b" / "predictions.csv"
    ).read_bytes()
    assert not np.allclose(first.frame["prob_a"], other.frame["prob_a"])

    for name in ("best.pt", "last.pt"):
        ckpt = torch.load(tmp_path / "a" / "checkpoints" / name, weights_only=True)
        assert ckpt["classes"] == CLASSES and ckpt["depth"] == 18
    model, info = load_classifier(tmp_path / "a" / "checkpoints" / "best.pt")
    assert info["step"] == first.summary["best_step"]
    prob = predict_proba(model, args[2], tiny())
    assert np.allclose(prob[:, 0], first.frame["prob_a"], atol=1e-6)


class _Crash(Exception):
    pass


def _original_train_batch():
    from srda.diagnosis import classifier

    return classifier._train_batch


_TRAIN_BATCH = _original_train_batch()


def _steps_run(monkeypatch, crash_at: int | None = None) -> list[int]:
    """Record the steps the classifier trains (and die at ``crash_at``)."""
    from srda.diagnosis import classifier

    steps: list[int] = []

    def recorded(train, sampler, step, s):
        if step == crash_at:
            raise _Crash
        steps.append(step)
        return _TRAIN_BATCH(train, sampler, step, s)

    monkeypatch.setattr(classifier, "_train_batch", recorded)
    return steps


def _same_weights(a, b) -> None:
    sa = torch.load(a / "checkpoints" / "last.pt", weights_only=True)["model"]
    sb = torch.load(b / "checkpoints" / "last.pt", weights_only=True)["model"]
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


def _log(folder):
    return pd.read_csv(folder / "classifier_log.csv").drop(columns="seconds")


def test_resumed_run_equals_an_uninterrupted_one(tmp_path, monkeypatch):
    args = (blobs(12, 16, 0), blobs(6, 16, 1), blobs(6, 16, 2), CLASSES)
    settings = tiny(steps=6, checkpoint_every=2, precision="fp32")  # fp32: exact on CPU
    whole = fit_and_predict(*args, settings, tmp_path / "whole")
    _steps_run(monkeypatch, crash_at=4)  # dies in step 4: last.pt is at step 2
    with pytest.raises(_Crash):
        fit_and_predict(*args, settings, tmp_path / "split")
    ran = _steps_run(monkeypatch)
    resumed = fit_and_predict(*args, settings, tmp_path / "split")
    assert resumed.summary["resumed_from"] == 2 and ran == [3, 4, 5, 6]
    pd.testing.assert_frame_equal(whole.frame, resumed.frame)
    pd.testing.assert_frame_equal(_log(tmp_path / "whole"), _log(tmp_path / "split"))
    _same_weights(tmp_path / "whole", tmp_path / "split")


def test_raised_steps_continue_even_with_the_log_removed(tmp_path, monkeypatch):
    args = (blobs(12, 16, 0), blobs(6, 16, 1), blobs(6, 16, 2), CLASSES)
    whole = fit_and_predict(*args, tiny(steps=4, precision="fp32"), tmp_path / "whole")
    fit_and_predict(*args, tiny(steps=2, precision="fp32"), tmp_path / "parts")
    for name in ("classifier_log.csv", "predictions.csv", "summary.json"):  # as Snakemake does
        (tmp_path / "parts" / name).unlink()
    ran = _steps_run(monkeypatch)
    resumed = fit_and_predict(*args, tiny(steps=4, precision="fp32"), tmp_path / "parts")
    assert resumed.summary["resumed_from"] == 2 and ran == [3, 4]
    pd.testing.assert_frame_equal(whole.frame, resumed.frame)
    pd.testing.assert_frame_equal(_log(tmp_path / "whole"), _log(tmp_path / "parts"))
    _same_weights(tmp_path / "whole", tmp_path / "parts")


def test_changed_settings_or_data_start_the_classifier_fresh(tmp_path, caplog):
    args = (blobs(12, 16, 0), blobs(6, 16, 1), blobs(6, 16, 2), CLASSES)
    fit_and_predict(*args, tiny(steps=4, precision="fp32"), tmp_path)
    with caplog.at_level("INFO", logger="srda.train.checkpoint"):
        again = fit_and_predict(*args, tiny(steps=4, lr=3e-4, precision="fp32"), tmp_path)
    assert again.summary["resumed_from"] is None and "lr 0.0001 -> 0.0003" in caplog.text
    fresh = fit_and_predict(*args, tiny(steps=4, lr=3e-4, precision="fp32"), tmp_path / "empty")
    pd.testing.assert_frame_equal(again.frame, fresh.frame)
    # other train images, same shapes and labels (an SR method retrained): fresh
    train = args[0]
    other = SplitData(np.flip(train.images, axis=2).copy(), train.labels, train.meta)
    caplog.clear()
    with caplog.at_level("INFO", logger="srda.train.checkpoint"):
        changed = fit_and_predict(
            other, *args[1:], tiny(steps=4, lr=3e-4, precision="fp32"), tmp_path
        )
    assert changed.summary["resumed_from"] is None and "the training data changed" in caplog.text


@pytest.mark.parametrize("size", [8, 12])
def test_lr_sized_inputs_run(tmp_path, size):
    # an 8x8 image is 2x2 after the stem and 1x1 from layer2 on; adaptive pooling copes
    result = fit_and_predict(
        blobs(8, size, 0), blobs(4, size, 1), blobs(4, size, 2), CLASSES, tiny(), tmp_path
    )
    assert len(result.frame) == 4
    assert result.summary["input_size"] == [size, size]


def test_upsampled_input_option(tmp_path):
    settings = tiny(upsample=4, upsample_mode="bicubic", steps=2)
    result = fit_and_predict(blobs(8, 8, 0), None, blobs(4, 8, 2), CLASSES, settings, tmp_path)
    assert result.summary["input_size"] == [32, 32]
    assert result.summary["n_val"] == 0  # no validation: the last model is used
    assert result.summary["weights"].endswith("last.pt")


def test_gpu_path_bf16_and_channels_last_on_cpu(tmp_path):
    args = (blobs(12, 16, 0), blobs(6, 16, 1), blobs(6, 16, 2), CLASSES)
    # one Adam step: equal up to rounding, which Adam amplifies in near-zero gradients (longer
    # runs may also select another checkpoint on a tie)
    once = {"steps": 1, "val_every": 1, "precision": "fp32"}
    plain = fit_and_predict(*args, tiny(**once, channels_last=False), tmp_path / "a")
    nhwc = fit_and_predict(*args, tiny(**once, channels_last=True), tmp_path / "b")
    assert nhwc.summary["channels_last"] is True and plain.summary["channels_last"] is False
    np.testing.assert_allclose(nhwc.frame["prob_a"], plain.frame["prob_a"], atol=2e-3)
    half = fit_and_predict(*args, tiny(precision="bf16", channels_last=True), tmp_path / "c")
    assert half.summary["precision"] == "bf16"
    assert np.isfinite(half.frame[["prob_a", "prob_b"]].to_numpy()).all()
    ckpt = torch.load(tmp_path / "c" / "checkpoints" / "last.pt", weights_only=True)
    assert ckpt["settings"]["precision"] == "bf16"  # what ran, not "auto"
    auto = fit_and_predict(*args, tiny(), tmp_path / "d")  # auto: bf16 where the CPU has it
    expected = "bf16" if native_bf16(torch.device("cpu")) else "fp32"
    assert auto.summary["precision"] == expected
    assert auto.summary["channels_last"] is precision.CPU_CHANNELS_LAST  # auto on a CPU
    ckpt = torch.load(tmp_path / "d" / "checkpoints" / "last.pt", weights_only=True)
    assert ckpt["settings"]["precision"] == expected
    with pytest.raises(ValueError, match="fp16 needs a CUDA"):
        fit_and_predict(*args, tiny(precision="fp16"), tmp_path / "e")


def test_settings_are_checked():
    with pytest.raises(ValueError, match="batch_size"):
        ClassifierSettings(batch_size=1)  # BatchNorm cannot train on one 1x1 map
    with pytest.raises(ValueError, match="unknown classifier settings"):
        ClassifierSettings.from_dict({"stepz": 3})
    with pytest.raises(ValueError, match="augment"):
        ClassifierSettings(augment="rotate")
    assert ClassifierSettings(augment=False).augment == "none"
    assert ClassifierSettings(epochs=2, batch_size=8).total_steps(20) == 5
    assert ClassifierSettings(steps=7).total_steps(1000) == 7


def test_sampler_sees_every_image_once_per_epoch():
    sampler = BatchSampler(n=10, batch_size=4, seed=1)
    first_epoch = np.concatenate([sampler.indices(k) for k in (1, 2)] + [sampler.indices(3)[:2]])
    assert sorted(first_epoch) == list(range(10))
    assert np.array_equal(sampler.indices(2), BatchSampler(10, 4, 1).indices(2))
    hflip, vflip = BatchSampler(10, 64, 0, augment="hflip").flips(1)
    assert hflip.any() and not vflip.any()


def test_run_diagnosis_reads_the_shard_layout(tmp_path):
    data = tmp_path / "ds"
    (data / "x4" / "sr" / "bicubic" / "seed0").mkdir(parents=True)
    (data / "dataset.json").write_text(json.dumps({"classes": CLASSES}))
    for k, split in enumerate(("train", "val", "test")):
        part = blobs(8, 16, k)
        np.save(data / f"{split}_hr.npy", part.images)
        np.save(data / "x4" / f"{split}_lr.npy", part.images[:, ::4, ::4].copy())
        np.save(data / "x4" / "sr" / "bicubic" / "seed0" / f"{split}.npy", part.images)
        meta = part.meta.assign(image="", slice=np.arange(8), label=np.array(CLASSES)[part.labels])
        meta.to_csv(data / f"{split}_meta.csv", index=False)
    settings = tiny(steps=2)
    lr = run_diagnosis(data, "lr", settings, tmp_path / "lr", scale=4)
    assert lr.summary["input_size"] == [4, 4]
    assert list(lr.frame.columns[:3]) == ["index", "subject", "slice"]
    sr = run_diagnosis(data, "sr", settings, tmp_path / "sr", scale=4, method="bicubic")
    hr = run_diagnosis(data, "hr", settings, tmp_path / "hr")
    pd.testing.assert_frame_equal(sr.frame, hr.frame)  # the same images give the same result
    # cross-fitted train images replace the train split's (here: the HR ones, so same result)
    np.save(tmp_path / "train_cf.npy", np.load(data / "train_hr.npy"))
    cf = run_diagnosis(
        data,
        "sr",
        settings,
        tmp_path / "cf",
        method="bicubic",
        train_images=tmp_path / "train_cf.npy",
    )
    pd.testing.assert_frame_equal(cf.frame, hr.frame)
    np.save(tmp_path / "bad.npy", np.zeros((3, 16, 16), np.float32))
    with pytest.raises(InputError, match="bad.npy"):
        run_diagnosis(
            data,
            "sr",
            settings,
            tmp_path / "x",
            method="bicubic",
            train_images=tmp_path / "bad.npy",
        )
    # the shuffled-label control: scored against its own permuted labels
    shuffled = run_diagnosis(data, "hr", tiny(steps=2, shuffle_labels=True), tmp_path / "sh")
    labels = shuffled.frame.groupby("subject")["label"].nunique()
    assert (labels == 1).all()  # one label per subject


def _splits_of_subjects(per_split: dict[str, list[str]], slices: int = 3) -> dict[str, SplitData]:
    out = {}
    for split, subjects in per_split.items():
        rows = np.repeat(subjects, slices)
        labels = np.array([int(s[1:]) % 3 for s in rows])
        meta = pd.DataFrame({"index": np.arange(rows.size), "subject": rows})
        out[split] = SplitData(np.zeros((rows.size, 4, 4), np.float32), labels, meta)
    return out


def test_labels_permuted_by_subject_keep_class_counts_and_follow_the_seed():
    names = [f"s{i}" for i in range(30)]
    splits = _splits_of_subjects({"train": names[:20], "val": names[20:25], "test": names[25:]})
    out = permute_labels_by_subject(splits, seed=0)

    def by_subject(parts):
        pairs = pd.concat(
            [
                pd.DataFrame({"subject": d.meta["subject"], "label": d.labels})
                for d in parts.values()
            ]
        )
        assert (pairs.groupby("subject")["label"].nunique() == 1).all()  # by subject
        return pairs.groupby("subject")["label"].first()

    before, after = by_subject(splits), by_subject(out)
    assert sorted(before) == sorted(after)  # the class counts over subjects are kept
    assert (before != after).sum() >= 10  # most subjects moved
    again = by_subject(permute_labels_by_subject(splits, seed=0))
    other = by_subject(permute_labels_by_subject(splits, seed=1))
    assert (again == after).all() and (other != after).any()


def test_a_subject_in_two_splits_keeps_one_permuted_label():
    # split: slices puts a subject's slices in several splits; the control must give it one
    # label everywhere (that is how a leaking split shows up as above-chance accuracy)
    splits = _splits_of_subjects({"train": ["s0", "s1", "s2", "s3"], "test": ["s1", "s2"]})
    out = permute_labels_by_subject(splits, seed=3)
    train = dict(zip(out["train"].meta["subject"], out["train"].labels, strict=True))
    test = dict(zip(out["test"].meta["subject"], out["test"].labels, strict=True))
    assert all(train[s] == test[s] for s in test)


# --------------------------------------------------------------------------------------------
# Metrics: known answers

Y_TRUE = np.array([0, 0, 0, 1, 1, 2])
Y_PRED = np.array([0, 0, 1, 1, 2, 2])


def test_confusion_balanced_accuracy_and_macro_f1_by_hand():
    cm = confusion_matrix(Y_TRUE, Y_PRED, 3)
    assert cm.tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert balanced_accuracy(Y_TRUE, Y_PRED, 3) == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    # F1 = 2 TP / (support + predicted): 4/5, 2/4, 2/3
    assert macro_f1(Y_TRUE, Y_PRED, 3) == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    # a class that is neither true nor predicted does not count
    assert macro_f1(Y_TRUE, Y_PRED, 4) == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert balanced_accuracy(Y_TRUE, Y_PRED, 4) == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)


def test_auc_by_hand_and_nan_when_a_class_is_absent():
    y = np.array([0, 0, 1, 1])
    p1 = np.array([0.1, 0.4, 0.35, 0.8])  # positives win 3 of the 4 pairs
    prob = np.stack([1 - p1, p1], axis=1)
    assert ovr_auc(y, prob) == pytest.approx(0.75)
    tied = np.full((4, 2), 0.5)
    assert ovr_auc(y, tied) == pytest.approx(0.5)
    three = np.column_stack([prob, np.zeros(4)])  # class 2 never occurs
    assert np.isnan(ovr_auc(y, three))
    scores = classification_metrics(y, (p1 > 0.5).astype(int), prob)
    assert scores["acc"] == pytest.approx(0.75) and scores["auc"] == pytest.approx(0.75)


def _table() -> pd.DataFrame:
    # subject A: slices say a, a, b -> a (correct); B: a, b tie, mean prob favours b -> b
    # (correct); C: b, b (wrong, true a)
    rows = [
        ("A", "a", "a", 0.9),
        ("A", "a", "a", 0.8),
        ("A", "a", "b", 0.4),
        ("B", "b", "a", 0.6),
        ("B", "b", "b", 0.1),
        ("C", "a", "b", 0.3),
        ("C", "a", "b", 0.2),
    ]
    frame = pd.DataFrame(rows, columns=["subject", "label", "pred", "prob_a"])
    frame.insert(0, "index", np.arange(len(frame)))
    frame["prob_b"] = 1 - frame["prob_a"]
    return frame


def test_subject_vote():
    per_subject = subject_predictions(_table(), CLASSES)
    assert per_subject["subject"].tolist() == ["A", "B", "C"]
    assert per_subject["pred"].tolist() == ["a", "b", "b"]
    assert per_subject["n_slices"].tolist() == [3, 2, 2]
    assert per_subject["prob_a"].tolist() == pytest.approx([0.7, 0.35, 0.25])
    assert vote(np.array([0, 1]), np.array([[0.5, 0.5], [0.5, 0.5]])) == 0  # full tie: first
    bad = _table()
    bad.loc[0, "label"] = "b"
    with pytest.raises(ValueError, match="one label per subject"):
        subject_predictions(bad, CLASSES)


def test_evaluate_predictions_levels_and_intervals():
    frame = _table()
    table = evaluate_predictions(frame, CLASSES, n_boot=200, seed=0)
    value = table.set_index(["level", "metric"])["value"]
    assert value["slice", "acc"] == pytest.approx(3 / 7)
    assert value["subject", "acc"] == pytest.approx(2 / 3)
    assert value["subject", "balanced_acc"] == pytest.approx((1 / 2 + 1) / 2)
    assert set(table["metric"]) == {"acc", "balanced_acc", "macro_f1", "auc"}
    acc = table[(table.level == "slice") & (table.metric == "acc")].iloc[0]
    correct = (frame["label"] == frame["pred"]).to_numpy(float)
    assert (acc.ci_low, acc.ci_high) == cluster_bootstrap_ci(correct, frame["subject"], 200, 0)
    finite = table.dropna(subset=["ci_low"])
    assert (finite.ci_low <= finite.value + 1e-12).all()
    assert (finite.value <= finite.ci_high + 1e-12).all()
    assert (table.n_subjects == 3).all()
    cm = confusion_table(frame, CLASSES, level="subject")
    assert cm.loc["a", "b"] == 1 and cm.loc["b", "b"] == 1 and cm.loc["a", "a"] == 1


def test_mcnemar_between_two_prediction_tables():
    a = _table()
    b = a.copy()
    b["pred"] = b["label"]  # always right
    assert mcnemar_between(a, a, CLASSES) == 1.0
    # subject level: only C differs (a wrong, b right) -> exact p = 2 * 1/2 = 1
    assert mcnemar_between(a, b, CLASSES) == 1.0
    # slice level: 4 discordant slices, all one way -> 2 / 16
    assert mcnemar_between(a, b, CLASSES, level="slice") == pytest.approx(2 / 16)
    with pytest.raises(ValueError, match="same"):
        mcnemar_between(a, b.iloc[:-1], CLASSES, level="slice")


# --------------------------------------------------------------------------------------------
# Early stop on a validation plateau (until_plateau)


class _ScriptedScores:
    """The k-th validation scores ``curve[k]`` as balanced accuracy (whatever the weights)."""

    def __init__(self, curve: list[float]) -> None:
        self.curve, self.calls = list(curve), 0

    def __call__(self, *args, **kwargs) -> dict[str, float]:
        value = self.curve[self.calls]
        self.calls += 1
        return {"loss": 1.0 - value, "acc": value, "balanced_acc": value}


class _Crash(RuntimeError):
    pass


# Validations every 2 steps, cap 20. With patience 2: step 8's 0.7 is the best, step 10 is lower
# (1 since the best), step 12 ties it (2): the run stops at step 12 with the model of step 8.
PLATEAU_CURVE = [0.5, 0.6, 0.6, 0.7, 0.65, 0.7, 0.7, 0.7, 0.7, 0.7]


def _plateau(**overrides) -> ClassifierSettings:
    return tiny(**({"steps": 20, "until_plateau": True, "patience": 2} | overrides))


def test_classifier_until_plateau_stops_at_the_expected_step(tmp_path, monkeypatch):
    from srda.diagnosis import classifier

    monkeypatch.setattr(classifier, "validate", _ScriptedScores(PLATEAU_CURVE))
    args = (blobs(12, 16, 0), blobs(6, 16, 1), blobs(6, 16, 2), CLASSES)
    result = fit_and_predict(*args, _plateau(), tmp_path / "run")
    summary = result.summary
    assert summary["stopped_early"] is True and summary["stopped_at_step"] == 12
    assert summary["steps"] == 12 and summary["best_step"] == 8 and summary["best_val"] == 0.7
    assert summary["weights"].endswith("best.pt")
    log = pd.read_csv(tmp_path / "run" / "classifier_log.csv")
    assert log["step"].tolist() == list(range(1, 13))
    assert log["val_balanced_acc"].dropna().tolist() == PLATEAU_CURVE[:6]
    last = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)
    assert last["step"] == 12 and last["plateau"] == {
        "since_best": 2,
        "stopped_at": 12,
        "longest_before_last": 1,
        "last_val_step": 12,
    }

    monkeypatch.setattr(classifier, "validate", _ScriptedScores(PLATEAU_CURVE))
    off = fit_and_predict(*args, _plateau(until_plateau=False), tmp_path / "off")
    assert off.summary["stopped_early"] is False and off.summary["stopped_at_step"] is None
    assert off.summary["steps"] == 20 and off.summary["best_step"] == 8


def test_classifier_until_plateau_resumes_exactly(tmp_path, monkeypatch):
    from srda.diagnosis import classifier

    args = (blobs(12, 16, 0), blobs(6, 16, 1), blobs(6, 16, 2), CLASSES)
    settings = _plateau(checkpoint_every=2)
    monkeypatch.setattr(classifier, "validate", _ScriptedScores(PLATEAU_CURVE))
    whole = fit_and_predict(*args, settings, tmp_path / "whole")

    # Dies in step 11: last.pt is at step 10, one validation after the best (8).
    curve = _ScriptedScores(PLATEAU_CURVE)
    monkeypatch.setattr(classifier, "validate", curve)
    train_batch = classifier._train_batch

    def crash_at_11(train, sampler, step, s):
        if step == 11:
            raise _Crash
        return train_batch(train, sampler, step, s)

    monkeypatch.setattr(classifier, "_train_batch", crash_at_11)
    with pytest.raises(_Crash):
        fit_and_predict(*args, settings, tmp_path / "split")
    saved = torch.load(tmp_path / "split" / "checkpoints" / "last.pt", weights_only=True)
    assert saved["step"] == 10 and saved["plateau"] == {
        "since_best": 1,
        "stopped_at": None,
        "longest_before_last": 1,
        "last_val_step": 10,
    }

    # Had the count been lost, the resumed run would stop at step 14, not 12.
    monkeypatch.setattr(classifier, "_train_batch", train_batch)
    resumed = fit_and_predict(*args, settings, tmp_path / "split")
    assert resumed.summary["resumed_from"] == 10
    for key in ("steps", "stopped_early", "stopped_at_step", "best_step", "best_val"):
        assert resumed.summary[key] == whole.summary[key], key
    pd.testing.assert_frame_equal(whole.frame, resumed.frame)
    assert pd.read_csv(tmp_path / "split" / "classifier_log.csv")["step"].tolist() == list(
        range(1, 13)
    )


def test_classifier_patience_is_checked():
    with pytest.raises(ValueError, match="patience"):
        tiny(patience=0)
    with pytest.raises(ValueError, match="until_plateau needs val_every"):
        tiny(until_plateau=True, val_every=0)
