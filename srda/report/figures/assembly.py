"""The assembly: from the results tree to the figure files.

``write_figures(settings, out_dir)`` checks every input first (no figure set half written), reads
the test split of each dataset and scale (arrays memory-mapped), chooses the image and the zoom
window, and draws and saves every figure of ``figure_files(settings)``.

Choices: the first seed only; the image shown is the one with the most hippocampus, else the one
of median PSNR; the zoom box is the padded bounding box of the largest connected piece of the
hippocampus (the ROI holds both hemispheres' hippocampi, whose joint box would span the brain),
or the image centre when there is no ROI.
"""

from __future__ import annotations

import json
import math
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from srda import layout
from srda.errors import InputError
from srda.reference_rows import REFERENCE_ROWS, classifier_dir
from srda.report.figures.declared import (
    TABLE1,
    TABLE3,
    attention_methods,
    data_folder,
    figure_inputs,
    first_seed,
    method_keys,
    sr_folder,
    tables_folder,
)
from srda.report.figures.plots import (
    AttentionRow,
    Box,
    Panel,
    palette,
    plot_attention,
    plot_error_maps,
    plot_psnr_vs_accuracy,
    plot_qualitative,
    plot_training_curves,
    save_figure,
)
from srda.shards import read_shard

if TYPE_CHECKING:
    import pandas as pd

REGION = "hippocampus"
PRIMARY_METHOD = "srda"  # its median-PSNR image is shown when there is no ROI
BICUBIC = "bicubic"


def region_area(roi: np.ndarray, label: int, chunk: int = 256) -> np.ndarray:
    """Pixels of ``label`` per image of an (N, H, W) label shard, read in chunks (memory-mapped
    shards stay on disk)."""
    areas = [
        (np.asarray(roi[start : start + chunk]) == label).sum(axis=(1, 2))
        for start in range(0, len(roi), chunk)
    ]
    return np.concatenate(areas) if areas else np.zeros(0, dtype=np.int64)


def pick_slice(
    roi: np.ndarray | None = None, psnr: Sequence[float] | np.ndarray | None = None, label: int = 1
) -> int:
    """Position of the test image the figures show.

    With region labels, the image with the largest area of ``label`` (the hippocampus; the first
    on ties). Otherwise, or when no image holds that region, the image whose PSNR is closest to
    the median PSNR. With neither, the first image.
    """
    if roi is not None and len(roi):
        area = region_area(roi, label)
        if area.max() > 0:
            return int(np.argmax(area))
    if psnr is not None:
        values = np.asarray(psnr, dtype=np.float64)
        finite = np.isfinite(values)
        if finite.any():
            distance = np.where(finite, np.abs(values - np.median(values[finite])), np.inf)
            return int(np.argmin(distance))
    return 0


def zoom_box(
    mask: np.ndarray | None, shape: tuple[int, int], pad: float = 0.35, min_frac: float = 0.3
) -> Box:
    """A square window around the largest connected piece of ``mask``, padded by ``pad`` of its
    size on each side and at least ``min_frac`` of the image; the centre half of the image when
    the mask is absent or empty."""
    height, width = int(shape[0]), int(shape[1])
    if mask is None or not np.any(mask):
        rows, cols = max(height // 2, 1), max(width // 2, 1)
        top, left = (height - rows) // 2, (width - cols) // 2
        return Box(top, top + rows, left, left + cols)
    from scipy import ndimage

    labelled, count = ndimage.label(np.asarray(mask, dtype=bool))
    sizes = np.bincount(labelled.ravel(), minlength=count + 1)[1:]
    piece = ndimage.find_objects(labelled)[int(np.argmax(sizes))]
    r0, r1, c0, c1 = piece[0].start, piece[0].stop, piece[1].start, piece[1].stop
    side = math.ceil(max(r1 - r0, c1 - c0) * (1 + 2 * pad))
    side = min(max(side, math.ceil(min_frac * min(height, width)), 2), height, width)

    def place(lo: int, hi: int, limit: int) -> int:
        start = int(round((lo + hi) / 2 - side / 2))
        return min(max(start, 0), limit - side)

    top, left = place(r0, r1, height), place(c0, c1, width)
    return Box(top, top + side, left, left + side)


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        raise InputError(path, f"{what} not found")
    return path


def _read_csv(path: Path, columns: Sequence[str], what: str) -> pd.DataFrame:
    import pandas as pd

    _require(path, what)
    try:
        frame = pd.read_csv(path, dtype={"subject": str, "image": str, "label": str})
    except (ValueError, OSError) as exc:
        raise InputError(path, f"unreadable {what} ({exc})") from exc
    missing = sorted(set(columns) - set(frame.columns))
    if missing:
        raise InputError(path, f"{what} lacks columns {missing}")
    return frame


def _read_json(path: Path, what: str) -> dict[str, Any]:
    _require(path, what)
    try:
        return json.loads(path.read_text())
    except (ValueError, OSError) as exc:
        raise InputError(path, f"unreadable {what} ({exc})") from exc


def _read_attention(path: Path, n_images: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    _require(path, "attention maps (attention.npz)")
    try:
        with np.load(path, allow_pickle=False) as arrays:
            sr, diag, index = (arrays[key] for key in ("sr_attention", "diag_attention", "index"))
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise InputError(path, f"not readable attention maps ({exc})") from exc
    if sr.ndim != 3 or diag.ndim != 3 or not len(sr) == len(diag) == len(index):
        raise InputError(
            path,
            f"expected (n, h, w) maps and n indices, got {sr.shape}, {diag.shape}, {index.shape}",
        )
    if len(index) == 0 or index.min() < 0 or index.max() >= n_images:
        raise InputError(path, f"image indices outside the {n_images} test images")
    return sr, diag, index.astype(np.int64)


def _check_inputs(settings: Mapping[str, Any]) -> None:
    """Fail before drawing anything when an input is missing (no figure set half written)."""
    for path in map(Path, figure_inputs(settings)):
        _require(path, "figure input")
    for dataset in settings["datasets"]:
        data = data_folder(settings, dataset)
        if _read_json(layout.dataset_json(data), "dataset.json").get("has_roi"):
            _require(layout.roi_shard(data, "test"), "region labels (dataset.json says has_roi)")


def _region_label(info: Mapping[str, Any]) -> tuple[int, str]:
    """The ROI label of the hippocampus by its name in ``roi_labels`` (1 when unnamed)."""
    labels = info.get("roi_labels") or {}
    for key, name in labels.items():
        if str(name).lower() == REGION:
            return int(key), str(name)
    return 1, str(labels.get("1", REGION))


def _ordered(methods: Sequence[Sequence[str]]) -> list[tuple[str, str]]:
    """(key, display name) pairs with Bicubic first, the rest in the configured order."""
    pairs = [(key, name) for key, name in methods]
    return sorted(pairs, key=lambda pair: pair[0] != BICUBIC)


def _scores(metrics: pd.DataFrame, index: int) -> tuple[float | None, float | None]:
    rows = metrics[metrics["index"] == index] if "index" in metrics else metrics.iloc[[index]]
    if not len(rows):
        return None, None
    row = rows.iloc[0]
    return float(row["psnr"]), float(row["ssim"])


def _caption(meta: pd.DataFrame, index: int) -> str:
    rows = meta[meta["index"] == index]
    if not len(rows):
        return f"test image {index}"
    row = rows.iloc[0]
    return f"test image {index} (subject {row['subject']}, slice {row['slice']}, {row['label']})"


def _logs(paths: Mapping[str, Path], what: str, columns: Sequence[str]) -> dict[str, Any]:
    return {name: _read_csv(path, columns, what) for name, path in paths.items() if path.exists()}


@dataclass
class _TestSet:
    """One dataset's test split at one scale, as the figures need it (arrays memory-mapped)."""

    hr: np.ndarray
    meta: pd.DataFrame
    roi: np.ndarray | None
    label: int
    region: str
    srs: dict[str, np.ndarray]
    metrics: dict[str, pd.DataFrame]


def _load_test_set(settings: Mapping[str, Any], dataset: str, scale: int) -> _TestSet:
    data = data_folder(settings, dataset)
    info = _read_json(layout.dataset_json(data), "dataset.json")
    hr = read_shard(layout.hr_shard(data, "test"))
    meta_path = layout.meta_csv(data, "test")
    meta = _read_csv(meta_path, ["index", "subject", "slice", "label"], "test meta")
    if len(meta) != len(hr):
        raise InputError(meta_path, f"{len(meta)} rows for {len(hr)} test images")
    roi = None
    if info.get("has_roi"):
        roi_path = layout.roi_shard(data, "test")
        roi = read_shard(roi_path)
        if roi.shape != hr.shape:
            raise InputError(roi_path, f"shape {roi.shape} != HR {hr.shape}")
    srs, metrics = {}, {}
    for key in method_keys(settings):
        sr_dir = sr_folder(settings, dataset, scale, key)
        sr_path, metrics_path = layout.sr_shard(sr_dir, "test"), layout.sr_metrics_csv(sr_dir)
        srs[key] = read_shard(sr_path)
        if srs[key].shape != hr.shape:
            raise InputError(sr_path, f"shape {srs[key].shape} != HR {hr.shape}")
        metrics[key] = _read_csv(metrics_path, ["psnr", "ssim"], "test metrics")
        if len(metrics[key]) != len(hr):
            raise InputError(metrics_path, f"{len(metrics[key])} rows for {len(hr)} test images")
    label, region = _region_label(info)
    return _TestSet(hr, meta, roi, label, region, srs, metrics)


def _training_logs(
    settings: Mapping[str, Any], dataset: str, scale: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """SR training logs and classifier logs (when diagnosis is on) that exist, by display name."""
    methods = _ordered(settings["methods"])
    sr_logs = _logs(
        {name: layout.train_log_csv(sr_folder(settings, dataset, scale, k)) for k, name in methods},
        "training log",
        ["step", "loss"],
    )
    if not settings.get("diagnosis"):
        return sr_logs, {}
    seed = first_seed(settings)
    cross_fitted, folds = settings.get("cross_fitted", ()), settings.get("cross_fit", 0)
    results = settings["results_dir"]
    rows = [(row, REFERENCE_ROWS[row].display) for row in settings.get("rows", REFERENCE_ROWS)]
    sources = {
        name: layout.classifier_log_csv(
            classifier_dir(results, dataset, scale, key, seed, cross_fitted, folds)
        )
        for key, name in [*methods, *rows]
    }
    return sr_logs, _logs(sources, "classifier log", ["step"])


def _attention_rows(
    settings: Mapping[str, Any], dataset: str, scale: int, test: _TestSet, psnr: Any
) -> tuple[list[AttentionRow], list[int]]:
    """Per attention-saving method, its maps of the saved image with the most hippocampus (or
    the median PSNR); also the test indices shown."""
    names = dict(settings["methods"])
    rows, shown = [], []
    for key in attention_methods(list(names)):
        path = layout.attention_npz(sr_folder(settings, dataset, scale, key))
        sr_att, diag_att, saved = _read_attention(path, len(test.hr))
        roi = None if test.roi is None else np.asarray(test.roi[saved])
        pos = pick_slice(roi, None if psnr is None else psnr[saved], test.label)
        image = int(saved[pos])
        shown.append(image)
        rows.append(
            AttentionRow(names[key], np.asarray(test.hr[image]), sr_att[pos], diag_att[pos])
        )
    return rows, shown


def _dataset_figures(
    settings: Mapping[str, Any], dataset: str, scale: int, out_dir: Path
) -> list[Path]:
    """The qualitative, error-map, training-curve and attention figures of one dataset/scale."""
    test = _load_test_set(settings, dataset, scale)
    keys = method_keys(settings)
    primary = PRIMARY_METHOD if PRIMARY_METHOD in keys else (keys[0] if keys else None)
    psnr = test.metrics[primary]["psnr"].to_numpy() if primary else None
    index = pick_slice(test.roi, psnr, test.label)
    mask = None if test.roi is None else np.asarray(test.roi[index]) == test.label
    box = zoom_box(mask, test.hr.shape[1:])
    hr_image = np.asarray(test.hr[index])
    panels = [Panel("HR", hr_image)] + [
        Panel(name, np.asarray(test.srs[key][index]), *_scores(test.metrics[key], index))
        for key, name in _ordered(settings["methods"])
    ]
    base = f"{dataset}_x{scale}"
    where = f"{dataset} x{scale}: {_caption(test.meta, index)}"
    zoom = f"zoom: {test.region}" if mask is not None and mask.any() else "zoom: image centre"
    colours = palette([name for _, name in settings["methods"]])

    written = save_figure(
        plot_qualitative(panels, box, f"{where}\nPSNR / SSIM under each panel; {zoom}"),
        out_dir,
        f"{base}_qualitative",
    )
    written += save_figure(
        plot_error_maps(hr_image, panels[1:], f"{where}\nabsolute error |SR − HR|"),
        out_dir,
        f"{base}_error_maps",
    )
    sr_logs, diag_logs = _training_logs(settings, dataset, scale)
    title = f"{dataset} x{scale}: training (seed {first_seed(settings)})"
    written += save_figure(
        plot_training_curves(sr_logs, diag_logs, title, colours),
        out_dir,
        f"{base}_training_curves",
    )
    if attention_methods(keys):
        rows, shown = _attention_rows(settings, dataset, scale, test, psnr)
        images = ", ".join(str(i) for i in dict.fromkeys(shown))
        title = f"{dataset} x{scale}: attention maps over HR, test image {images}"
        written += save_figure(plot_attention(rows, title), out_dir, f"{base}_attention")
    return written


def accuracy_points(
    table1: pd.DataFrame, table3: pd.DataFrame, settings: Mapping[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The points and reference lines of the PSNR-vs-accuracy figure, first seed only.

    Points: every configured method with both a PSNR (Table I, image level when the table has
    levels) and a slice-level accuracy (Table III). References: LR per scale and HR (whose rows
    may carry any scale) accuracies.
    """
    import pandas as pd

    seed = first_seed(settings)
    psnr = table1[table1["metric"] == "psnr"]
    if "level" in psnr:
        psnr = psnr[psnr["level"] == "image"]
    acc = table3[(table3["metric"] == "acc") & (table3["level"] == "slice")]

    def select(frame: pd.DataFrame, dataset: str, method: str, scale: int, exact: bool) -> Any:
        part = frame[(frame["dataset"] == dataset) & (frame["method"] == method)]
        by_seed = part[part["seed"] == seed]
        by_scale = by_seed[by_seed["scale"] == scale]
        chosen = by_scale if exact or len(by_scale) else by_seed
        return chosen.iloc[0] if len(chosen) else None

    points, refs = [], []
    for dataset in settings["datasets"]:
        for scale in settings["scales"]:
            for key, name in settings["methods"]:
                x = select(psnr, dataset, key, scale, exact=True)
                y = select(acc, dataset, key, scale, exact=True)
                if x is None or y is None:
                    continue
                points.append(
                    {
                        "dataset": dataset,
                        "scale": scale,
                        "method": key,
                        "name": name,
                        "psnr": float(x["value"]),
                        "psnr_low": float(x["ci_low"]),
                        "psnr_high": float(x["ci_high"]),
                        "acc": float(y["value"]),
                        "acc_low": float(y["ci_low"]),
                        "acc_high": float(y["ci_high"]),
                    }
                )
            for source in ("lr_native", "lr", "hr"):
                exact = REFERENCE_ROWS[source].per_scale
                row = select(acc, dataset, source, scale, exact=exact)
                if row is not None:
                    refs.append(
                        {
                            "dataset": dataset,
                            "scale": scale,
                            "name": REFERENCE_ROWS[source].display,
                            "acc": float(row["value"]),
                        }
                    )
    point_columns = ["dataset", "scale", "method", "name", "psnr", "psnr_low", "psnr_high"]
    point_columns += ["acc", "acc_low", "acc_high"]
    return (
        pd.DataFrame(points, columns=point_columns),
        pd.DataFrame(refs, columns=["dataset", "scale", "name", "acc"]),
    )


def _paper_lr(long: pd.DataFrame) -> pd.DataFrame:
    """The rows of the networks trained on bicubic LR (the paper's): the figures show those,
    the other LR models are in the cross-degradation table and its heat maps."""
    if "degradation" not in long.columns:
        return long
    return long[long["degradation"] == layout.BICUBIC].reset_index(drop=True)


def write_figures(settings: Mapping[str, Any], out_dir: Path | str) -> list[Path]:
    """Draw every figure of ``figure_files(settings)`` into ``out_dir``; return the paths."""
    out_dir = Path(out_dir)
    _check_inputs(settings)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for dataset in settings["datasets"]:
        for scale in settings["scales"]:
            written += _dataset_figures(settings, dataset, scale, out_dir)
    if settings.get("diagnosis"):
        tables = tables_folder(settings)
        long = ["dataset", "scale", "method", "seed", "metric", "value", "ci_low", "ci_high"]
        table1 = _paper_lr(_read_csv(tables / TABLE1, long, "Table I"))
        table3 = _paper_lr(_read_csv(tables / TABLE3, [*long, "level"], "Table III"))
        points, refs = accuracy_points(table1, table3, settings)
        colours = palette([name for _, name in settings["methods"]])
        title = f"PSNR vs downstream diagnosis accuracy (test split, seed {first_seed(settings)})"
        fig = plot_psnr_vs_accuracy(
            points, refs, title, settings["datasets"], settings["scales"], colours
        )
        written += save_figure(fig, out_dir, "psnr_vs_accuracy")
    return written
