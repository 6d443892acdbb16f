"""The drawings: each ``plot_*`` takes plain arrays and frames and returns a matplotlib ``Figure``,
so it can be tested without a results tree; ``save_figure`` writes one as PNG and PDF.

Figures are made with ``matplotlib.figure.Figure`` directly, not through pyplot: no backend is
selected, no global registry keeps figures alive, and matplotlib is imported inside the functions
that draw, never when the package is imported. Every image panel is grey with vmin 0 and vmax 1,
SR images clipped to [0, 1].
"""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from srda.report.figures.declared import FORMATS
from srda.shards import atomic_path

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

PNG_DPI = 150
MAX_COLUMNS = 6  # image panels per row before the grid wraps
ZOOM_COLOUR = "#ffd400"
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


def palette(names: Sequence[str]) -> dict[str, str]:
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

    colours = dict(colours or palette([*sr_logs, *diag_logs]))
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
    colours = dict(colours or palette(list(points["name"])))
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
