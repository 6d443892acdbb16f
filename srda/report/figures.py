"""Figures from the results tree: qualitative grids, error maps, attention maps, training curves
and PSNR against downstream diagnosis accuracy.

``figure_files(settings)`` names every file from the settings alone (the Snakefile declares them
as outputs before anything exists); ``figure_inputs(settings)`` names the files they are drawn
from; ``write_figures(settings, out_dir)`` checks those inputs, reads them and writes every
figure as PNG and PDF, each file atomically. Each figure is drawn by a ``plot_*`` function that
takes plain arrays and frames and returns a matplotlib ``Figure``, so it can be tested without
a results tree.

Figures are made with ``matplotlib.figure.Figure`` directly, not through pyplot: no backend is
selected, no global registry keeps figures alive, and importing this module does not import
matplotlib (the Snakefile imports it for ``figure_files``).

Conventions: the first seed only; SR images clipped to [0, 1] for display and error maps; every
image panel in grey with vmin 0 and vmax 1; the zoom box is the padded bounding box of the
largest connected piece of the hippocampus (the ROI holds both hemispheres' hippocampi, whose
joint box would span the brain), or the image centre when there is no ROI.
"""

from __future__ import annotations

import functools
import json
import math
import sys
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from srda import layout
from srda.errors import InputError
from srda.reference_rows import REFERENCE_ROWS, classifier_dir
from srda.shards import atomic_path, read_shard

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

FORMATS = ("png", "pdf")
PNG_DPI = 150
MAX_COLUMNS = 6  # image panels per row before the grid wraps
ZOOM_COLOUR = "#ffd400"
REGION = "hippocampus"
PRIMARY_METHOD = "srda"  # its median-PSNR image is shown when there is no ROI
BICUBIC = "bicubic"
TABLE1 = "table1_psnr_ssim.csv"
TABLE3 = "table3_diagnosis.csv"
#: Table III's reference rows as drawn (display names of srda.reference_rows).
REFERENCE_COLOURS = {
    "LR, native size (paper)": "#a0a0a0",
    "LR (nearest)": "#555555",
    "HR": "#000000",
    "HR, shuffled labels": "#d62728",
}
STYLE = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "figure.titlesize": 11,
    "legend.fontsize": 7,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "image.interpolation": "nearest",
    "pdf.fonttype": 42,  # TrueType in PDFs: editable text
}


class Box(NamedTuple):
    """A half-open pixel window: rows ``top:bottom``, columns ``left:right``."""

    top: int
    bottom: int
    left: int
    right: int


@dataclass(frozen=True)
class Panel:
    """One image of a grid with the scores printed under it (none for the reference)."""

    name: str
    image: np.ndarray
    psnr: float | None = None
    ssim: float | None = None


@dataclass(frozen=True)
class AttentionRow:
    """One method's two attention maps (any size) and the HR image they belong to."""

    name: str
    hr: np.ndarray
    sr_attention: np.ndarray
    diag_attention: np.ndarray


# --------------------------------------------------------------------------------------------
# What is written, and from what (settings only, no file reads)
# --------------------------------------------------------------------------------------------


def attention_methods(methods: Sequence[str]) -> list[str]:
    """The method keys whose jobs save ``attention.npz``, in the given order.

    ``srda.run.save_attention`` writes the file only when the model has a diagnosis network and
    both networks return an attention map: the SRDA variants with both the ``attention`` and the
    ``diagnosis`` flag (``srda.models`` holds the flags as plain data, without torch).
    """
    from srda.models import VARIANTS

    def saves(method: str) -> bool:
        parts = VARIANTS.get(method, {})
        return bool(parts.get("attention") and parts.get("diagnosis"))

    return [method for method in methods if saves(method)]


def _method_keys(settings: Mapping[str, Any]) -> list[str]:
    return [key for key, _ in settings["methods"]]


def figure_stems(settings: Mapping[str, Any]) -> list[str]:
    """Every figure's file name without its extension."""
    with_attention = bool(attention_methods(_method_keys(settings)))
    stems = []
    for dataset in settings["datasets"]:
        for scale in settings["scales"]:
            base = f"{dataset}_x{scale}"
            stems += [f"{base}_qualitative", f"{base}_error_maps", f"{base}_training_curves"]
            if with_attention:
                stems.append(f"{base}_attention")
    if settings.get("diagnosis"):
        stems.append("psnr_vs_accuracy")
    return stems


def figure_files(settings: Mapping[str, Any]) -> list[str]:
    """Every file ``write_figures`` writes, relative to its output folder (PNG and PDF)."""
    return [f"{stem}.{ext}" for stem in figure_stems(settings) for ext in FORMATS]


def _seed(settings: Mapping[str, Any]) -> int:
    return settings["seeds"][0]


def _data_dir(settings: Mapping[str, Any], dataset: str) -> Path:
    return layout.data_dir(settings["results_dir"], dataset)


def _sr_dir(settings: Mapping[str, Any], dataset: str, scale: int, method: str) -> Path:
    return layout.sr_dir(settings["results_dir"], dataset, scale, method, _seed(settings))


def _tables_dir(settings: Mapping[str, Any]) -> Path:
    return layout.tables_dir(settings["results_dir"])


def figure_inputs(settings: Mapping[str, Any]) -> list[str]:
    """The files the figures cannot be drawn without (``test_roi.npy`` is read when a dataset's
    ``dataset.json`` says it has one; training and classifier logs are used when present)."""
    keys = _method_keys(settings)
    with_attention = set(attention_methods(keys))
    paths: list[Path] = []
    for dataset in settings["datasets"]:
        data = _data_dir(settings, dataset)
        paths += [layout.dataset_json(data), layout.hr_shard(data, "test")]
        paths.append(layout.meta_csv(data, "test"))
        for scale in settings["scales"]:
            for key in keys:
                sr = _sr_dir(settings, dataset, scale, key)
                paths += [layout.sr_shard(sr, "test"), layout.sr_metrics_csv(sr)]
                if key in with_attention:
                    paths.append(layout.attention_npz(sr))
    if settings.get("diagnosis"):
        paths += [_tables_dir(settings) / TABLE1, _tables_dir(settings) / TABLE3]
    return [str(path) for path in paths]


# --------------------------------------------------------------------------------------------
# Choices made on arrays
# --------------------------------------------------------------------------------------------


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


def upsample(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a 2-D map to ``shape`` with half-pixel centres (as torch's
    ``interpolate(mode="bilinear", align_corners=False)``), edges clamped."""
    out = np.asarray(image, dtype=np.float32)
    for axis, size in enumerate(shape):
        n_in = out.shape[axis]
        if n_in == size:
            continue
        pos = np.clip((np.arange(size) + 0.5) * n_in / size - 0.5, 0, n_in - 1)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, n_in - 1)
        weight = (pos - lo).astype(np.float32).reshape([-1 if a == axis else 1 for a in (0, 1)])
        out = np.take(out, lo, axis=axis) * (1 - weight) + np.take(out, hi, axis=axis) * weight
    return out


def _display(image: np.ndarray) -> np.ndarray:
    return np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0)


# --------------------------------------------------------------------------------------------
# Drawing
# --------------------------------------------------------------------------------------------


def _styled(draw: Callable[..., Figure]) -> Callable[..., Figure]:
    """Draw under the module's rc settings without touching the caller's global ones."""

    @functools.wraps(draw)
    def wrapper(*args: Any, **kwargs: Any) -> Figure:
        import matplotlib

        with matplotlib.rc_context(STYLE):
            return draw(*args, **kwargs)

    return wrapper


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _bare(ax: Axes, frame: str | None = None) -> None:
    """An image axis: no ticks, a coloured frame when asked."""
    ax.set_axis_on()
    ax.set_xticks([])
    ax.set_yticks([])
    if frame:
        for spine in ax.spines.values():
            spine.set_edgecolor(frame)
            spine.set_linewidth(2.0)


def _empty(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#555555")


def _palette(names: Sequence[str]) -> dict[str, str]:
    """A distinct colour per name, stable in the order given."""
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    cmap = colormaps["tab10" if len(names) <= 10 else "tab20"]
    return {name: to_hex(cmap(i % cmap.N)) for i, name in enumerate(dict.fromkeys(names))}


def _colour(colours: Mapping[str, str], name: str) -> str:
    return REFERENCE_COLOURS.get(name) or colours.get(name, "#1f77b4")


def _scores_text(panel: Panel) -> str:
    if panel.psnr is None and panel.ssim is None:
        return "reference"
    psnr = "n/a" if panel.psnr is None else f"{panel.psnr:.2f} dB"
    ssim = "n/a" if panel.ssim is None else f"{panel.ssim:.4f}"
    return f"{psnr} / {ssim}"


def _grid(count: int) -> tuple[int, int]:
    columns = max(1, min(count, MAX_COLUMNS))
    return columns, max(1, math.ceil(count / columns))


@_styled
def plot_qualitative(panels: Sequence[Panel], box: Box, title: str) -> Figure:
    """Each panel's image over its zoomed window (outlined on the image), scores underneath.

    The first panel is normally HR (no scores); images are clipped to [0, 1] and drawn in grey
    with vmin 0, vmax 1.
    """
    from matplotlib.patches import Rectangle

    columns, groups = _grid(len(panels))
    fig = _figure(2.0 * columns + 0.3, 4.2 * groups + 0.5)
    axes = fig.subplots(2 * groups, columns, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    top, bottom, left, right = box
    for i, panel in enumerate(panels):
        group, column = divmod(i, columns)
        full, zoom = axes[2 * group, column], axes[2 * group + 1, column]
        image = _display(panel.image)
        _bare(full)
        full.imshow(image, cmap="gray", vmin=0.0, vmax=1.0)
        outline = Rectangle(
            (left - 0.5, top - 0.5),
            right - left,
            bottom - top,
            fill=False,
            edgecolor=ZOOM_COLOUR,
            linewidth=1.2,
        )
        full.add_patch(outline)
        full.set_title(panel.name, fontweight="bold")
        _bare(zoom, ZOOM_COLOUR)
        zoom.imshow(image[top:bottom, left:right], cmap="gray", vmin=0.0, vmax=1.0)
        zoom.set_xlabel(_scores_text(panel))
    fig.suptitle(title)
    return fig


@_styled
def plot_error_maps(hr: np.ndarray, panels: Sequence[Panel], title: str) -> Figure:
    """|SR - HR| of each panel on one colour scale (up to the largest 99.5th percentile)."""
    hr = _display(hr)
    errors = [np.abs(_display(panel.image) - hr) for panel in panels]
    vmax = max([float(np.percentile(error, 99.5)) for error in errors] + [1e-3])
    columns, rows = _grid(len(panels))
    fig = _figure(2.0 * columns + 1.0, 2.3 * rows + 0.5)
    axes = fig.subplots(rows, columns, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    if not panels:
        _empty(axes[0, 0], "no methods")
    image = None
    for i, (panel, error) in enumerate(zip(panels, errors, strict=True)):
        ax = axes.flat[i]
        _bare(ax)
        image = ax.imshow(error, cmap="inferno", vmin=0.0, vmax=vmax)
        ax.set_title(panel.name, fontweight="bold")
        ax.set_xlabel(f"MAE {error.mean():.4f}")
    if image is not None:
        extend = "max" if any(float(error.max()) > vmax for error in errors) else "neither"
        fig.colorbar(image, ax=axes, shrink=0.85, extend=extend, label="|SR − HR|")
    fig.suptitle(title)
    return fig


@_styled
def plot_attention(rows: Sequence[AttentionRow], title: str, alpha: float = 0.45) -> Figure:
    """Per method: HR | SR-network attention | diagnosis-network attention, each map upsampled
    to the HR size and laid over the HR image, one colour scale per row."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    fig = _figure(8.2, 2.5 * max(len(rows), 1) + 0.6)
    axes = fig.subplots(max(len(rows), 1), 3, squeeze=False)
    headers = ("HR", "SR-network attention", "diagnosis-network attention")
    if not rows:
        for ax in axes.flat:
            ax.set_axis_off()
        _empty(axes[0, 1], "no attention maps")
    for r, row in enumerate(rows):
        hr = _display(row.hr)
        maps = [upsample(row.sr_attention, hr.shape), upsample(row.diag_attention, hr.shape)]
        lo = float(min(np.nanmin(m) for m in maps))
        hi = float(max(np.nanmax(m) for m in maps))
        if not hi - lo > 1e-6:  # a flat (or empty) map: show it on the sigmoid's range
            lo, hi = min(lo, 0.0), max(hi, 1.0)
        for c, ax in enumerate(axes[r]):
            _bare(ax)
            ax.imshow(hr, cmap="gray", vmin=0.0, vmax=1.0)
            if c:
                ax.imshow(maps[c - 1], cmap="jet", alpha=alpha, vmin=lo, vmax=hi)
            if r == 0:
                ax.set_title(headers[c])
        axes[r, 0].set_ylabel(row.name, fontweight="bold")
        scale = ScalarMappable(Normalize(lo, hi), cmap="jet")
        fig.colorbar(scale, ax=list(axes[r]), shrink=0.9, label="attention")
    fig.suptitle(title)
    return fig


def _line_axes(ax: Axes, title: str, xlabel: str, ylabel: str) -> None:
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)


def _column(log: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    if x not in log or y not in log:
        return log.iloc[0:0]
    return log[[x, y]].dropna()


@_styled
def plot_training_curves(
    sr_logs: Mapping[str, pd.DataFrame],
    diag_logs: Mapping[str, pd.DataFrame],
    title: str,
    colours: Mapping[str, str] | None = None,
) -> Figure:
    """SR validation PSNR and training loss per method; with classifier logs, a third panel of
    classifier validation balanced accuracy per source (methods, LR, HR). Keys are the names
    shown in the legend (one for the figure, below the panels)."""
    from matplotlib.ticker import MaxNLocator

    colours = dict(colours or _palette([*sr_logs, *diag_logs]))
    panels = 3 if diag_logs else 2
    fig = _figure(4.3 * panels, 4.2)
    axes = fig.subplots(1, panels, squeeze=False)[0]
    handles: dict[str, Any] = {}

    def line(ax: Axes, frame: pd.DataFrame, y: str, name: str, **style: Any) -> None:
        (handle,) = ax.plot(frame["step"], frame[y], color=_colour(colours, name), **style)
        if "label" in style:
            handles.setdefault(name, handle)

    ax = axes[0]
    _line_axes(ax, "SR validation PSNR", "step", "PSNR (dB)")
    for name, log in sr_logs.items():
        val = _column(log, "step", "val_psnr")
        if len(val):
            line(ax, val, "val_psnr", name, marker="o", ms=3, lw=1.3, label=name)
    if not ax.lines:
        _empty(ax, "no validation steps logged" if sr_logs else "no trained methods")

    ax = axes[1]
    _line_axes(ax, "SR training loss (faint: per step)", "step", "loss")
    lows, highs = [], []
    for name, log in sr_logs.items():
        loss = _column(log, "step", "loss")
        if not len(loss):
            continue
        window = max(1, len(loss) // 50)
        smooth = loss.assign(loss=loss["loss"].rolling(window, min_periods=1).mean())
        line(ax, loss, "loss", name, alpha=0.2, lw=0.6)
        line(ax, smooth, "loss", name, lw=1.3, label=name)
        lows.append(float(loss["loss"].min()))
        highs.append(float(loss["loss"].max()))
    if not ax.lines:
        _empty(ax, "no trained methods")
    elif min(lows) > 0 and max(highs) / min(lows) > 20:  # losses of different magnitudes
        ax.set_yscale("log")

    if diag_logs:
        ax = axes[2]
        _line_axes(ax, "Classifier validation balanced accuracy", "step", "balanced accuracy")
        for name, log in diag_logs.items():
            val = _column(log, "step", "val_balanced_acc")
            if len(val):
                dashes = "--" if name in REFERENCE_COLOURS else "-"
                line(ax, val, "val_balanced_acc", name, ls=dashes, marker="o", ms=3, label=name)
        if not ax.lines:
            _empty(ax, "no validation steps logged")

    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if handles:
        order = [
            *colours,
            *REFERENCE_COLOURS,
        ]  # the configured method order, then the reference rows
        names = sorted(handles, key=lambda n: order.index(n) if n in order else len(order))
        fig.legend(
            [handles[name] for name in names],
            names,
            loc="outside lower center",
            ncol=min(len(handles), 8),
            frameon=False,
        )
    fig.suptitle(title)
    return fig


def _span(value: float, low: Any, high: Any) -> list[list[float]]:
    """Error bar lengths below and above a value (zero where the CI is missing)."""
    below = value - float(low) if low is not None and np.isfinite(float(low)) else 0.0
    above = float(high) - value if high is not None and np.isfinite(float(high)) else 0.0
    return [[max(below, 0.0)], [max(above, 0.0)]]


@_styled
def plot_psnr_vs_accuracy(
    points: pd.DataFrame,
    refs: pd.DataFrame,
    title: str,
    datasets: Sequence[str] | None = None,
    scales: Sequence[int] | None = None,
    colours: Mapping[str, str] | None = None,
) -> Figure:
    """One panel per (scale, dataset): method PSNR against slice-level accuracy with both CIs,
    points labelled, the LR (both inputs) and HR accuracies as dashed lines.

    ``points``: dataset, scale, name, psnr, psnr_low, psnr_high, acc, acc_low, acc_high.
    ``refs``: dataset, scale, name (a reference row's display name), acc.
    """
    datasets = list(datasets or dict.fromkeys([*points["dataset"], *refs["dataset"]]))
    scales = list(scales or dict.fromkeys(points["scale"]))
    colours = dict(colours or _palette(list(points["name"])))
    rows, columns = max(len(scales), 1), max(len(datasets), 1)
    fig = _figure(4.2 * columns, 3.6 * rows + 0.4)
    axes = fig.subplots(rows, columns, squeeze=False)
    for r, scale in enumerate(scales or [None]):
        for c, dataset in enumerate(datasets or [None]):
            ax = axes[r, c]
            _line_axes(ax, f"{dataset} (x{scale})", "PSNR (dB)", "slice-level accuracy")
            part = points[(points["dataset"] == dataset) & (points["scale"] == scale)]
            for p in part.itertuples(index=False):
                ax.errorbar(
                    p.psnr,
                    p.acc,
                    xerr=_span(p.psnr, p.psnr_low, p.psnr_high),
                    yerr=_span(p.acc, p.acc_low, p.acc_high),
                    fmt="o",
                    ms=5,
                    capsize=2,
                    color=_colour(colours, p.name),
                )
                ax.annotate(
                    p.name, (p.psnr, p.acc), xytext=(4, 4), textcoords="offset points", fontsize=7
                )
            ref_part = refs[(refs["dataset"] == dataset) & (refs["scale"] == scale)]
            for ref in ref_part.itertuples(index=False):
                colour = _colour(colours, ref.name)
                ax.axhline(ref.acc, ls="--", lw=1.0, color=colour)
                ax.annotate(
                    f"{ref.name} {ref.acc:.3f}",
                    xy=(1.0, ref.acc),
                    xycoords=("axes fraction", "data"),
                    xytext=(-3, 2),
                    textcoords="offset points",
                    ha="right",
                    va="bottom",
                    fontsize=7,
                    color=colour,
                    bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1},
                )
            if not len(part) and not len(ref_part):
                _empty(ax, "no diagnosis results")
    fig.suptitle(title)
    return fig


def save_figure(fig: Figure, out_dir: Path | str, stem: str) -> list[Path]:
    """Write ``stem.png`` and ``stem.pdf`` atomically, then release the figure."""
    import matplotlib

    out_dir = Path(out_dir)
    paths = []
    try:
        with matplotlib.rc_context(STYLE):
            for ext in FORMATS:
                path = out_dir / f"{stem}.{ext}"
                # No creation date in the PDF: the same inputs give the same bytes.
                metadata = {"CreationDate": None} if ext == "pdf" else None
                with atomic_path(path) as tmp:
                    fig.savefig(tmp, format=ext, dpi=PNG_DPI, metadata=metadata)
                paths.append(path)
    finally:
        close_figure(fig)
    return paths


def close_figure(fig: Figure) -> None:
    """Drop a figure's artists, and pyplot's reference if pyplot made it."""
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close(fig)
    fig.clear()


# --------------------------------------------------------------------------------------------
# Reading the results tree
# --------------------------------------------------------------------------------------------


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
        data = _data_dir(settings, dataset)
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
    data = _data_dir(settings, dataset)
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
    for key in _method_keys(settings):
        sr_dir = _sr_dir(settings, dataset, scale, key)
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
        {name: layout.train_log_csv(_sr_dir(settings, dataset, scale, k)) for k, name in methods},
        "training log",
        ["step", "loss"],
    )
    if not settings.get("diagnosis"):
        return sr_logs, {}
    seed = _seed(settings)
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
        path = layout.attention_npz(_sr_dir(settings, dataset, scale, key))
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
    keys = _method_keys(settings)
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
    colours = _palette([name for _, name in settings["methods"]])

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
    title = f"{dataset} x{scale}: training (seed {_seed(settings)})"
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

    seed = _seed(settings)
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
        tables = _tables_dir(settings)
        long = ["dataset", "scale", "method", "seed", "metric", "value", "ci_low", "ci_high"]
        table1 = _read_csv(tables / TABLE1, long, "Table I")
        table3 = _read_csv(tables / TABLE3, [*long, "level"], "Table III")
        points, refs = accuracy_points(table1, table3, settings)
        colours = _palette([name for _, name in settings["methods"]])
        title = f"PSNR vs downstream diagnosis accuracy (test split, seed {_seed(settings)})"
        fig = plot_psnr_vs_accuracy(
            points, refs, title, settings["datasets"], settings["scales"], colours
        )
        written += save_figure(fig, out_dir, "psnr_vs_accuracy")
    return written
