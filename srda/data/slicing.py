"""Turn a canonical (RAS) 3D volume or a 2D image into square HR slices in [0, 1].

Slices are shown the radiological-viewer way up: anterior (axial) or superior (coronal,
sagittal) at the top row, and the patient's left on the image's left (neurological convention).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from skimage.transform import resize

PLANE_AXIS = {"sagittal": 0, "coronal": 1, "axial": 2}
FOREGROUND = 0.1  # fraction of the clipped intensity range counted as head/brain
MARGIN_PX = 2


@dataclass
class SliceSet:
    images: np.ndarray  # (n, hr, hr) float32 in [0, 1]
    slice_index: np.ndarray  # (n,) index along the slicing axis in the canonical volume
    roi: np.ndarray | None  # (n, hr, hr) uint8 labels, or None
    pixel_mm: float = math.nan  # HR pixel side in mm (after the crop and resize); nan if unknown


def normalise(data: np.ndarray, clip_percentiles: tuple[float, float]) -> np.ndarray:
    """Clip at volume percentiles and scale to [0, 1] (float32)."""
    lo, hi = np.percentile(data, clip_percentiles)
    if not hi > lo:
        raise ValueError(f"intensities are constant between percentiles {clip_percentiles}")
    return np.clip((data.astype(np.float32) - lo) / (hi - lo), 0.0, 1.0)


def _to_display(slab: np.ndarray) -> np.ndarray:
    """(a, b, n) canonical in-plane axes -> (n, rows, cols) with the second axis pointing up."""
    return np.ascontiguousarray(np.flip(slab, 1).transpose(2, 1, 0))


def square_pixel_mm(shape: tuple[int, ...], zooms: tuple[float, float], hr_size: int) -> float:
    """The side of the square pixel ``_fit_square`` resamples a (a, b) slab of ``zooms`` to."""
    return float((np.array(shape[:2]) * np.array(zooms)).max() / hr_size)


def _fit_square(
    slab: np.ndarray, zooms: tuple[float, float], hr_size: int, order: int
) -> np.ndarray:
    """Resample (a, b, n) to isotropic pixels so the longer side spans hr_size, then centre-pad."""
    extent = np.array(slab.shape[:2]) * np.array(zooms)
    pixel_mm = square_pixel_mm(slab.shape, zooms, hr_size)
    out_ab = np.clip(np.round(extent / pixel_mm).astype(int), 1, hr_size)
    resized = resize(
        slab,
        (int(out_ab[0]), int(out_ab[1]), slab.shape[2]),
        order=order,
        anti_aliasing=order > 0,
        preserve_range=True,
        mode="edge",
    )
    out = np.zeros((hr_size, hr_size, slab.shape[2]), dtype=slab.dtype)
    a0, b0 = (hr_size - out_ab) // 2
    out[a0 : a0 + out_ab[0], b0 : b0 + out_ab[1]] = resized
    return out


def thin_evenly(indices: np.ndarray, n: int | None) -> np.ndarray:
    """At most ``n`` of ``indices``, evenly spread from the first to the last (all if None)."""
    if n is None or len(indices) <= n:
        return indices
    return indices[np.round(np.linspace(0, len(indices) - 1, n)).astype(int)]


def volume_to_slices(
    data: np.ndarray,
    zooms: tuple[float, float, float],
    plane: str = "axial",
    hr_size: int = 128,
    min_brain_fraction: float = 0.4,
    slices_per_volume: int | None = None,
    clip_percentiles: tuple[float, float] = (0.5, 99.5),
    mask: np.ndarray | None = None,
) -> SliceSet:
    """HR slices of one volume: those whose head area is at least ``min_brain_fraction`` of the
    largest slice's, evenly thinned to ``slices_per_volume``, cropped to the head's bounding box
    and resampled to ``hr_size`` x ``hr_size`` with square pixels."""
    axis = PLANE_AXIS[plane]
    vol = np.moveaxis(normalise(data, clip_percentiles), axis, -1)
    in_plane = tuple(z for i, z in enumerate(zooms) if i != axis)
    fg = vol > FOREGROUND
    area = fg.sum(axis=(0, 1))
    keep = np.flatnonzero(area >= max(min_brain_fraction * area.max(), 1))
    keep = thin_evenly(keep, slices_per_volume)

    rows = np.flatnonzero(fg[:, :, keep].any(axis=(1, 2)))
    cols = np.flatnonzero(fg[:, :, keep].any(axis=(0, 2)))
    a0, a1 = max(rows[0] - MARGIN_PX, 0), min(rows[-1] + MARGIN_PX + 1, vol.shape[0])
    b0, b1 = max(cols[0] - MARGIN_PX, 0), min(cols[-1] + MARGIN_PX + 1, vol.shape[1])

    crop = vol[a0:a1, b0:b1, keep]
    slab = _fit_square(crop, in_plane, hr_size, order=3)
    images = np.clip(_to_display(slab), 0.0, 1.0).astype(np.float32)
    roi = None
    if mask is not None:
        mslab = np.moveaxis(mask, axis, -1)[a0:a1, b0:b1, keep].astype(np.uint8)
        roi = _to_display(_fit_square(mslab, in_plane, hr_size, order=0)).astype(np.uint8)
    return SliceSet(images, keep, roi, square_pixel_mm(crop.shape, in_plane, hr_size))


def image_to_hr(
    image: np.ndarray,
    hr_size: int,
    mask: np.ndarray | None = None,
    source_pixel_mm: float | None = None,
) -> SliceSet:
    """A 2D image in [0, 1] (rows, cols), centre-padded to a square and resized to hr_size;
    ``source_pixel_mm``, the image's own pixel side when known, gives the HR pixel's."""
    slab = np.flip(image, 0).T[:, :, None]  # undo _to_display's flip/transpose
    out = _fit_square(slab.astype(np.float32), (1.0, 1.0), hr_size, order=3)
    images = np.clip(_to_display(out), 0.0, 1.0).astype(np.float32)
    roi = None
    if mask is not None:
        mslab = np.flip(mask, 0).T[:, :, None].astype(np.uint8)
        roi = _to_display(_fit_square(mslab, (1.0, 1.0), hr_size, order=0)).astype(np.uint8)
    pixel_mm = math.nan
    if source_pixel_mm is not None:
        pixel_mm = square_pixel_mm(slab.shape, (source_pixel_mm, source_pixel_mm), hr_size)
    return SliceSet(images, np.zeros(1, dtype=int), roi, pixel_mm)
