"""Per-image PSNR and SSIM for batches of grey-level images, BasicSR conventions.

Every function takes ``sr`` and ``hr`` of shape ``(N, H, W)`` (or ``(H, W)``, giving a single
value) and returns one float64 value per image. Arithmetic is float64 whatever the input dtype.
``crop`` removes that many pixels from each border before scoring (the suite passes
``crop=scale``, as BasicSR does). Inputs may be memory-mapped: they are read in chunks.

SSIM is the Gaussian-window SSIM of Wang et al. (2004): 11x11 window (sigma 1.5, truncated at
3.5 sigma), K1 = 0.01, K2 = 0.03, population (co)variances. Its value equals
``skimage.metrics.structural_similarity(a, b, data_range=..., gaussian_weights=True,
sigma=1.5, use_sample_covariance=False)`` on float64 images: like skimage, the SSIM map is
averaged over the pixels at least 5 (the window radius) from the border of the (cropped)
image. Those pixels' windows lie inside the image, so the filtering is done in "valid" mode and
the boundary mode never matters.

PSNR is ``10 log10(data_range^2 / MSE)``; identical images give ``+inf`` (no epsilon is added,
so the caller decides how to aggregate them).

This module is a lower floor of the package: numpy and scipy only.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from scipy import ndimage

log = logging.getLogger(__name__)

K1 = 0.01
K2 = 0.03
SIGMA = 1.5
TRUNCATE = 3.5  # skimage's choice: radius int(3.5 * 1.5 + 0.5) = 5, an 11-tap window
RADIUS = int(TRUNCATE * SIGMA + 0.5)
WIN_SIZE = 2 * RADIUS + 1

#: Pixels per chunk (N x H x W): the ~10 float64 work arrays of SSIM then stay in cache.
_CHUNK_PIXELS = 1 << 16


def _to_numpy(x: Any) -> np.ndarray:
    # Accept torch tensors without importing torch (this module must stay cheap to import).
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu().numpy()
    return np.asarray(x) if not isinstance(x, np.ndarray) else x


def _prepare(
    sr: Any, hr: Any, crop: int, data_range: float, min_size: int = 1
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Validate and crop; returns 3-D views and whether the input was a single image."""
    a, b = _to_numpy(sr), _to_numpy(hr)
    if a.shape != b.shape:
        raise ValueError(f"sr shape {a.shape} and hr shape {b.shape} differ")
    if a.ndim not in (2, 3):
        raise ValueError(f"expected images of shape (N, H, W) or (H, W), got shape {a.shape}")
    for name, arr in (("sr", a), ("hr", b)):
        if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
            raise ValueError(f"{name} has non-numeric dtype {arr.dtype}")
    if not (np.isfinite(data_range) and data_range > 0):
        raise ValueError(f"data_range must be a positive finite number, got {data_range}")
    if int(crop) != crop or crop < 0:
        raise ValueError(f"crop must be a non-negative integer, got {crop!r}")
    crop = int(crop)
    single = a.ndim == 2
    if single:
        a, b = a[None], b[None]
    h, w = a.shape[1] - 2 * crop, a.shape[2] - 2 * crop
    if h < min_size or w < min_size:
        raise ValueError(
            f"images of shape {a.shape[1:]} cropped by {crop} per border leave {h}x{w} "
            f"pixels; at least {min_size}x{min_size} are needed"
        )
    if crop:
        a, b = a[:, crop:-crop, crop:-crop], b[:, crop:-crop, crop:-crop]
    return a, b, single


def _chunks(a: np.ndarray, b: np.ndarray) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Float64 copies of consecutive image blocks, checked for NaN/inf."""
    n, h, w = a.shape
    step = max(1, _CHUNK_PIXELS // (h * w))
    for start in range(0, n, step):
        x = np.asarray(a[start : start + step], dtype=np.float64)
        y = np.asarray(b[start : start + step], dtype=np.float64)
        for name, arr in (("sr", x), ("hr", y)):
            bad = ~np.isfinite(arr).all(axis=(1, 2))
            if bad.any():
                first = start + int(np.argmax(bad))
                raise ValueError(
                    f"{name} contains NaN or inf values ({int(bad.sum())} image(s) in "
                    f"this block, first at index {first})"
                )
        yield start, x, y


def _finish(values: np.ndarray, single: bool) -> np.ndarray:
    return np.float64(values[0]) if single else values


def _workers() -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(4, cpus))


def _map_chunks(
    fn: Callable[[np.ndarray, np.ndarray], np.ndarray], a: np.ndarray, b: np.ndarray
) -> np.ndarray:
    """Apply ``fn`` to float64 chunks on a few threads (numpy and ndimage release the GIL)."""
    out = np.empty(a.shape[0], dtype=np.float64)
    workers = _workers()
    if workers == 1 or a.shape[0] * a.shape[1] * a.shape[2] <= _CHUNK_PIXELS:
        for start, x, y in _chunks(a, b):
            out[start : start + x.shape[0]] = fn(x, y)
        return out
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending = []
        for start, x, y in _chunks(a, b):
            pending.append((start, x.shape[0], pool.submit(fn, x, y)))
            # Bound memory: never more than two chunks per worker in flight.
            while len(pending) > 2 * workers:
                s, n, fut = pending.pop(0)
                out[s : s + n] = fut.result()
        for s, n, fut in pending:
            out[s : s + n] = fut.result()
    return out


def _psnr_from_mse(mse: np.ndarray, data_range: float) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10((data_range**2) / mse)


def psnr(sr: Any, hr: Any, crop: int = 0, data_range: float = 1.0) -> np.ndarray:
    """Peak signal-to-noise ratio in dB, one value per image (``+inf`` for identical images).

    ``sr``, ``hr``: arrays (or tensors) of shape (N, H, W) or (H, W); ``crop`` pixels are
    removed from every border first. Raises ValueError on mismatched shapes or NaN/inf.
    """
    a, b, single = _prepare(sr, hr, crop, data_range)

    def block(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        d = x - y
        return np.mean(d * d, axis=(1, 2))

    mse = _map_chunks(block, a, b)
    return _finish(_psnr_from_mse(mse, data_range), single)


def _gaussian_window() -> np.ndarray:
    # Same 1-D taps as scipy.ndimage.gaussian_filter(sigma=1.5, truncate=3.5), used by skimage.
    x = np.arange(-RADIUS, RADIUS + 1, dtype=np.float64)
    g = np.exp(-0.5 / (SIGMA * SIGMA) * x * x)
    return g / g.sum()


_WINDOW = _gaussian_window()


def _ssim_map(x: np.ndarray, y: np.ndarray, data_range: float) -> np.ndarray:
    """SSIM map of each image of a (n, H, W) float64 block, without the window's half-width
    at every border (what the mean is taken over): shape (n, H - 10, W - 10)."""
    c1 = (K1 * data_range) ** 2
    c2 = (K2 * data_range) ** 2
    # One filtering pass over the four moments; E[x^2] + E[y^2] is all SSIM needs of the
    # second moments (vx + vy), which saves a fifth filter.
    stack = np.empty((4,) + x.shape, dtype=np.float64)
    stack[0] = x
    stack[1] = y
    np.multiply(x, x, out=stack[2])
    stack[2] += y * y
    np.multiply(x, y, out=stack[3])
    # Filter the columns first and keep only the valid ones, then the rows.
    f = ndimage.correlate1d(stack, _WINDOW, axis=3, mode="reflect")[..., RADIUS:-RADIUS]
    f = ndimage.correlate1d(f, _WINDOW, axis=2, mode="reflect")[:, :, RADIUS:-RADIUS, :]
    ux, uy, uss, uxy = f
    uxuy = ux * uy
    usq = ux * ux + uy * uy
    num = (2.0 * uxuy + c1) * (2.0 * (uxy - uxuy) + c2)
    den = (usq + c1) * ((uss - usq) + c2)
    return num / den


def _ssim_block(x: np.ndarray, y: np.ndarray, data_range: float) -> np.ndarray:
    """Mean SSIM of each image of a (n, H, W) float64 block."""
    return np.mean(_ssim_map(x, y, data_range), axis=(1, 2))


def ssim(sr: Any, hr: Any, crop: int = 0, data_range: float = 1.0) -> np.ndarray:
    """Gaussian-window SSIM, one value per image (see the module docstring for the settings).

    ``sr``, ``hr``: arrays (or tensors) of shape (N, H, W) or (H, W); ``crop`` pixels are
    removed from every border first, after which images need at least 11x11 pixels.
    Raises ValueError on mismatched shapes, too small images or NaN/inf.
    """
    a, b, single = _prepare(sr, hr, crop, data_range, min_size=WIN_SIZE)
    values = _map_chunks(lambda x, y: _ssim_block(x, y, data_range), a, b)
    return _finish(values, single)


def mask_psnr(sr: Any, hr: Any, mask: Any, data_range: float = 1.0) -> np.ndarray:
    """PSNR over the pixels where ``mask`` is true, one value per image.

    ``mask`` has the images' shape or (H, W) (one region for all images). Images whose mask is
    empty get NaN; a region reproduced exactly gets ``+inf``.
    """
    a, b, single = _prepare(sr, hr, 0, data_range)
    m = np.asarray(_to_numpy(mask)).astype(bool, copy=False)
    if m.shape == a.shape[1:]:
        m = m[None]
    elif single and m.shape == (1,) + a.shape[1:]:
        pass
    elif m.shape != a.shape:
        raise ValueError(
            f"mask shape {m.shape} matches neither the images' shape "
            f"{a.shape if not single else a.shape[1:]} nor one image's {a.shape[1:]}"
        )
    n = a.shape[0]
    sse = np.zeros(n, dtype=np.float64)
    count = np.zeros(n, dtype=np.int64)
    for start, x, y in _chunks(a, b):
        stop = start + x.shape[0]
        mk = m if m.shape[0] == 1 else m[start:stop]
        d = x - y
        sse[start:stop] = np.sum(np.where(mk, d * d, 0.0), axis=(1, 2))
        count[start:stop] = np.broadcast_to(mk, d.shape).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        mse = np.where(count > 0, sse / np.maximum(count, 1), np.nan)
        values = _psnr_from_mse(mse, data_range)
    return _finish(values, single)


def _crop_mask(mask: Any, shape: tuple[int, ...], crop: int) -> np.ndarray:
    """The mask as (N or 1, H, W) bool, cropped like the images."""
    m = np.asarray(_to_numpy(mask)).astype(bool, copy=False)
    m = m[None] if m.ndim == 2 else m
    if m.shape[1:] != shape[1:] or m.shape[0] not in (1, shape[0]):
        raise ValueError(f"mask shape {m.shape} does not match the images' shape {shape}")
    return m[:, crop : m.shape[1] - crop, crop : m.shape[2] - crop] if crop else m


def mask_ssim(sr: Any, hr: Any, mask: Any, crop: int = 0, data_range: float = 1.0) -> np.ndarray:
    """Mean of the SSIM map over the pixels where ``mask`` is true, one value per image.

    The map is the one ``ssim`` averages (same window, same border), so a mask covering the
    whole image gives ``ssim``'s value. ``mask``: (N, H, W) or (H, W), before cropping. Images
    whose mask has no pixel inside the map get NaN.
    """
    a, b, single = _prepare(sr, hr, crop, data_range, min_size=WIN_SIZE)
    m = _crop_mask(mask, (a.shape[0],) + tuple(np.add(a.shape[1:], 2 * crop)), crop)
    m = m[:, RADIUS:-RADIUS, RADIUS:-RADIUS]
    out = np.empty(a.shape[0], dtype=np.float64)
    for start, x, y in _chunks(a, b):
        stop = start + x.shape[0]
        mk = np.broadcast_to(m if m.shape[0] == 1 else m[start:stop], (stop - start,) + m.shape[1:])
        smap = _ssim_map(x, y, data_range)
        count = mk.sum(axis=(1, 2))
        with np.errstate(invalid="ignore"):
            out[start:stop] = np.where(mk, smap, 0.0).sum(axis=(1, 2)) / count
        out[start:stop][count == 0] = np.nan
    return _finish(out, single)


def psnr_ssim_table(
    sr: Any, hr: Any, crop: int = 0, data_range: float = 1.0
) -> dict[str, np.ndarray]:
    """``{"psnr": ..., "ssim": ...}``, per-image values keyed by the lower-case metric names."""
    return {
        "psnr": psnr(sr, hr, crop=crop, data_range=data_range),
        "ssim": ssim(sr, hr, crop=crop, data_range=data_range),
    }
