"""Figures from a tiny fake results tree: declared files, non-blank images, clear input errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from srda.errors import InputError
from srda.report import figures

HR_SIZE = 16
SCALE = 4
N_TEST = 5
SEED = 0
METHODS = [["bicubic", "Bicubic"], ["rcan", "RCAN"], ["srda", "SRDA"]]
CLASSES = ["CN", "MCI", "AD"]
ROI_LABELS = {"1": "hippocampus", "2": "lateral ventricles", "3": "cortical AD regions"}
HIPPOCAMPUS_AREAS = [4, 6, 12, 9, 0]  # image 2 has the most hippocampus
FORMATS = ("png", "pdf")
LONG = ["dataset", "scale", "method", "seed", "metric", "value", "ci_low", "ci_high"]


def _psnr(sr: np.ndarray, hr: np.ndarray) -> np.ndarray:
    mse = ((np.clip(sr, 0, 1) - hr) ** 2).mean(axis=(1, 2))
    return 10 * np.log10(1.0 / np.maximum(mse, 1e-12))


def _roi(rng: np.random.Generator) -> np.ndarray:
    """Two hippocampus blobs per image (left one larger), plus a large ventricle region."""
    roi = np.zeros((N_TEST, HR_SIZE, HR_SIZE), dtype=np.uint8)
    for i, area in enumerate(HIPPOCAMPUS_AREAS):
        if area:
            roi[i, 9, 2 : 2 + area // 2] = 1
            roi[i, 10, 2 : 2 + area - area // 2] = 1
            roi[i, 9, 12] = 1  # the other hemisphere's, smaller
        roi[i, 3:6, 5:11] = 2
    roi[4, 2:8, 2:14] = 2  # most ventricle, no hippocampus: must not be picked
    return roi


def _train_log(steps: int, with_terms: bool) -> pd.DataFrame:
    step = np.arange(1, steps + 1)
    frame = pd.DataFrame({"step": step, "loss": 0.5 / np.sqrt(step)})
    if with_terms:
        frame["l1"], frame["ce"], frame["att"] = frame["loss"] * 0.9, 1.1, 0.01
    frame["lr"], frame["seconds"] = 1e-4, step * 0.1
    frame["val_psnr"] = np.where(step % 5 == 0, 20 + np.log(step), np.nan)
    return frame


def _classifier_log(steps: int, level: float) -> pd.DataFrame:
    step = np.arange(1, steps + 1)
    val = step % 4 == 0
    return pd.DataFrame(
        {
            "step": step,
            "loss": 1.0 / step,
            "train_acc": np.linspace(0.3, 0.9, steps),
            "lr": 1e-4,
            "seconds": step * 0.2,
            "val_loss": np.where(val, 1.0 / step, np.nan),
            "val_acc": np.where(val, level, np.nan),
            "val_balanced_acc": np.where(val, level * step / steps, np.nan),
        }
    )


def _write_csv(path: Path, frame: pd.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)


def make_tree(
    root: Path,
    datasets: tuple[str, ...] = ("adni-mri", "demented-mri"),
    methods: list[list[str]] = METHODS,
    diagnosis: bool = True,
) -> dict:
    """A results tree as the pipeline leaves it; the first dataset has region labels."""
    rng = np.random.default_rng(0)
    results = root / "results"
    yy, xx = np.mgrid[0:HR_SIZE, 0:HR_SIZE] / HR_SIZE
    table1, table3 = [], []
    for d, dataset in enumerate(datasets):
        data = results / dataset
        (data / f"x{SCALE}").mkdir(parents=True)
        has_roi = d == 0
        info = {"classes": CLASSES, "has_roi": has_roi, "hr_size": HR_SIZE}
        if has_roi:
            info["roi_labels"] = ROI_LABELS
            np.save(data / "test_roi.npy", _roi(rng))
        (data / "dataset.json").write_text(json.dumps(info))
        phase = np.arange(N_TEST)[:, None, None]
        hr = 0.5 + 0.35 * np.sin(6 * xx + phase) * np.cos(4 * yy - phase)
        hr = np.clip(hr + 0.05 * rng.standard_normal(hr.shape), 0, 1).astype(np.float32)
        np.save(data / "test_hr.npy", hr)
        lr = hr.reshape(N_TEST, HR_SIZE // SCALE, SCALE, HR_SIZE // SCALE, SCALE).mean((2, 4))
        np.save(data / f"x{SCALE}" / "test_lr.npy", lr.astype(np.float32))
        meta = pd.DataFrame(
            {
                "index": range(N_TEST),
                "subject": [f"sub-{i // 2:04d}" for i in range(N_TEST)],
                "image": [f"sub-{i // 2:04d}" for i in range(N_TEST)],
                "slice": [10 + i for i in range(N_TEST)],
                "label": [CLASSES[i % 3] for i in range(N_TEST)],
            }
        )
        _write_csv(data / "test_meta.csv", meta)
        for m, (key, _) in enumerate(methods):
            out = data / f"x{SCALE}" / "sr" / key / f"seed{SEED}"
            out.mkdir(parents=True)
            sr = hr + (0.12 - 0.03 * m) * rng.standard_normal(hr.shape)
            sr = (sr + 0.03).astype(np.float32)  # a little above 1 in places, as real outputs
            np.save(out / "test.npy", sr)
            scores = meta.assign(psnr=_psnr(sr, hr), ssim=np.linspace(0.5, 0.7, N_TEST))
            _write_csv(out / "test_metrics.csv", scores)
            if key != "bicubic":
                _write_csv(out / "train" / "train_log.csv", _train_log(20, key == "srda"))
            if key == "srda":
                n, side = 3, HR_SIZE // SCALE
                maps = rng.uniform(0.2, 0.8, (n, side, side)).astype(np.float32)
                np.savez_compressed(
                    out / "attention.npz",
                    sr_attention=maps,
                    diag_attention=maps[:, ::-1].copy(),
                    index=np.arange(n),
                )
            if diagnosis:
                _write_csv(out / "diagnosis" / "classifier_log.csv", _classifier_log(12, 0.6))
            value = 25.0 + 2 * m
            for metric, v in (("psnr", value), ("ssim", 0.6 + 0.05 * m)):
                table1.append([dataset, SCALE, key, SEED, metric, v, v - 0.5, v + 0.5, "image"])
            table1.append([dataset, SCALE, key, SEED, "psnr", 99.0, 98.0, 100.0, "subject"])
            table3.append([dataset, SCALE, key, SEED, "slice", "acc", 0.5 + 0.05 * m, 0.4, 0.7])
            table3.append([dataset, SCALE, key, SEED, "subject", "acc", 0.9, 0.8, 1.0])
        if diagnosis:
            for row, share in (("lr_native", 0.3), ("lr", 0.45)):
                log = data / f"x{SCALE}" / f"diagnosis_{row}" / f"seed{SEED}" / "classifier_log.csv"
                _write_csv(log, _classifier_log(12, share))
            for row, share in (("hr", 0.8), ("hr_shuffled", 0.33)):
                log = data / f"diagnosis_{row}" / f"seed{SEED}" / "classifier_log.csv"
                _write_csv(log, _classifier_log(12, share))
        table3.append([dataset, SCALE, "lr_native", SEED, "slice", "acc", 0.3, 0.2, 0.4])
        table3.append([dataset, SCALE, "lr", SEED, "slice", "acc", 0.45, 0.4, 0.5])
        table3.append([dataset, np.nan, "hr", SEED, "slice", "acc", 0.8, 0.75, 0.85])
    _write_csv(
        results / "tables" / "table1_psnr_ssim.csv", pd.DataFrame(table1, columns=[*LONG, "level"])
    )
    columns = ["dataset", "scale", "method", "seed", "level", "metric", "value", "ci_low"]
    frame3 = pd.DataFrame(table3, columns=[*columns, "ci_high"])
    _write_csv(results / "tables" / "table3_diagnosis.csv", frame3.assign(n=N_TEST, p_value=0.5))
    return {
        "results_dir": str(results),
        "datasets": list(datasets),
        "scales": [SCALE],
        "seeds": [SEED, 1],
        "methods": methods,
        "diagnosis": diagnosis,
    }


def _files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()} if folder.exists() else set()


def test_writes_exactly_the_declared_files_and_none_is_blank(tmp_path):
    import matplotlib.image

    settings = make_tree(tmp_path)
    out = tmp_path / "figures"
    written = figures.write_figures(settings, out)
    declared = figures.figure_files(settings)
    assert len(declared) == len(set(declared)) == 2 * (2 * 4 + 1)
    assert _files(out) == set(declared)  # no temporary files left either
    assert sorted(p.name for p in written) == sorted(declared)
    for name in declared:
        path = out / name
        if name.endswith(".png"):
            pixels = matplotlib.image.imread(path)
            assert pixels.std() > 0.02, name
        else:
            assert path.read_bytes()[:4] == b"%PDF", name
            assert path.stat().st_size > 1024, name


def test_figure_names(tmp_path):
    settings = {
        "results_dir": str(tmp_path),
        "datasets": ["a", "b"],
        "scales": [2, 4],
        "seeds": [3],
        "methods": [["srda_dconv_diag", "SR+Dconv+Diag"], ["rcan", "RCAN"]],
        "diagnosis": False,
    }
    stems = [
        f"{d}_x{s}_{kind}"
        for d in "ab"
        for s in (2, 4)
        for kind in ("qualitative", "error_maps", "training_curves")
    ]
    assert figures.figure_files(settings) == [f"{st}.{ext}" for st in stems for ext in FORMATS]
    with_srda = {**settings, "methods": [*settings["methods"], ["srda", "SRDA"]]}
    names = figures.figure_files(with_srda)
    assert "a_x2_attention.png" in names and "b_x4_attention.pdf" in names
    assert not any("psnr_vs_accuracy" in name for name in names)
    assert figures.figure_files({**with_srda, "diagnosis": True})[-2:] == [
        "psnr_vs_accuracy.png",
        "psnr_vs_accuracy.pdf",
    ]


def test_attention_methods_follow_the_variant_flags():
    from srda.models import VARIANTS

    expected = [v for v, parts in VARIANTS.items() if parts["attention"] and parts["diagnosis"]]
    assert figures.attention_methods([*VARIANTS, "rcan", "bicubic"]) == expected == ["srda"]


def test_importing_for_figure_files_is_cheap(repo):
    code = (
        "import sys; from srda.report import figures; "
        "figures.figure_files({'datasets': ['d'], 'scales': [4], 'methods': [['srda', 'S']]}); "
        "heavy = [m for m in ('matplotlib', 'torch', 'seaborn', 'numpy', 'pandas') "
        "if m in sys.modules]; "
        "print(heavy); sys.exit(bool(heavy))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_missing_sr_shard_names_the_file_and_writes_nothing(tmp_path):
    settings = make_tree(tmp_path)
    missing = Path(settings["results_dir"]) / "demented-mri" / "x4" / "sr" / "rcan" / "seed0"
    (missing / "test.npy").unlink()
    out = tmp_path / "figures"
    with pytest.raises(InputError, match="demented-mri/x4/sr/rcan/seed0/test.npy"):
        figures.write_figures(settings, out)
    assert _files(out) == set()


def test_without_diagnosis_or_trained_methods(tmp_path):
    settings = make_tree(
        tmp_path, datasets=("adni-pet",), methods=[["bicubic", "Bicubic"]], diagnosis=False
    )
    (Path(settings["results_dir"]) / "tables").joinpath("table3_diagnosis.csv").unlink()
    out = tmp_path / "figures"
    figures.write_figures(settings, out)
    assert _files(out) == set(figures.figure_files(settings))
    assert not any("psnr_vs_accuracy" in name or "attention" in name for name in _files(out))


def test_slice_choice_and_zoom_follow_the_hippocampus():
    roi = _roi(np.random.default_rng(0))
    assert figures.pick_slice(roi, psnr=[30, 10, 20, 25, 40], label=1) == 2
    assert figures.pick_slice(roi, label=2) == 4  # the label asked for decides
    # No ROI (or no hippocampus anywhere): the median-PSNR image.
    assert figures.pick_slice(None, psnr=[30, 10, 20, 25, 40]) == 3
    assert figures.pick_slice(np.zeros_like(roi), psnr=[1.0, np.nan, 3.0, 2.0]) == 3
    assert figures.pick_slice(None, None) == 0

    box = figures.zoom_box(roi[2] == 1, roi.shape[1:])
    assert box.bottom - box.top == box.right - box.left  # square, for an undistorted zoom
    assert box.top <= 9 and box.bottom >= 11 and box.left <= 2 and box.right >= 8
    assert box.right <= 12  # the larger blob only, not both hemispheres
    assert figures.zoom_box(None, (16, 20)) == figures.Box(4, 12, 5, 15)


def test_upsample_is_bilinear_with_half_pixel_centres():
    flat = figures.upsample(np.full((3, 4), 0.25), (12, 16))
    assert flat.shape == (12, 16) and np.allclose(flat, 0.25)
    ramp = figures.upsample(np.array([[0.0, 1.0]]), (1, 4))
    assert np.allclose(ramp, [[0.0, 0.25, 0.75, 1.0]])
    assert figures.upsample(np.ones((5, 7)), (5, 7)).shape == (5, 7)


def test_accuracy_points_use_image_level_psnr_and_slice_accuracy(tmp_path):
    settings = make_tree(tmp_path, datasets=("adni-mri",))
    tables = Path(settings["results_dir"]) / "tables"
    table1 = pd.read_csv(tables / "table1_psnr_ssim.csv")
    table3 = pd.read_csv(tables / "table3_diagnosis.csv")
    points, refs = figures.accuracy_points(table1, table3, settings)
    assert list(points["name"]) == ["Bicubic", "RCAN", "SRDA"]
    assert list(points["psnr"]) == [25.0, 27.0, 29.0]  # not the subject-level 99
    assert np.allclose(points["acc"], [0.5, 0.55, 0.6])
    assert dict(zip(refs["name"], refs["acc"], strict=True)) == {
        "LR, native size (paper)": 0.3,
        "LR (nearest)": 0.45,
        "HR": 0.8,
    }


def test_plot_functions_take_plain_arrays_and_odd_inputs():
    import io

    rng = np.random.default_rng(1)
    hr = rng.uniform(0, 1, (12, 12)).astype(np.float32)
    # x2-style maps: the diagnosis-side map is not the SR-side (LR) size.
    rows = [figures.AttentionRow("SRDA", hr, rng.uniform(size=(6, 6)), rng.uniform(size=(3, 3)))]
    flat = [figures.AttentionRow("flat", hr, np.full((6, 6), 0.5), np.full((6, 6), 0.5))]
    empty = pd.DataFrame(columns=["step", "loss", "val_psnr"])
    drawn = [
        figures.plot_attention(rows + flat, "attention"),
        figures.plot_qualitative([figures.Panel("HR", hr)], figures.zoom_box(None, hr.shape), "q"),
        figures.plot_error_maps(hr, [], "no methods"),
        figures.plot_training_curves({"RCAN": empty}, {}, "no steps"),
    ]
    for fig in drawn:
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=40)
        figures.close_figure(fig)
        assert buffer.getvalue()[:4] == b"\x89PNG"


def test_the_psnr_vs_accuracy_figure_takes_the_bicubic_networks_rows():
    import pandas as pd

    from srda.report.figures.assembly import _paper_lr

    long = pd.DataFrame({"degradation": ["bicubic", "kspace", "bicubic"], "value": [1, 2, 3]})
    assert list(_paper_lr(long)["value"]) == [1, 3]
    assert list(_paper_lr(long.drop(columns="degradation"))["value"]) == [1, 2, 3]
