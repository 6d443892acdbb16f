"""LR generation and the Bicubic method: MATLAB-compatible bicubic ``imresize``.

The super-resolution literature (EDSR, RCAN, BasicSR, SRDA) makes its LR images with MATLAB's
``imresize(hr, 1/s, 'bicubic')``. This module reproduces that operator in float64:

* Keys' cubic kernel with ``a = -0.5``, support ``[-2, 2]``;
* when shrinking (``scale < 1``) the kernel is stretched by ``1/scale`` (antialiasing), so its
  width becomes ``4/scale`` and ``h(x) = scale * cubic(scale * x)``;
* output pixel ``x`` (1-based) samples input coordinate ``u = x/scale + 0.5 * (1 - 1/scale)``
  (pixel centres aligned), using the ``ceil(width) + 2`` input pixels from
  ``floor(u - width/2)`` on; the weights of each output pixel are normalised to sum to 1;
* indices outside the image are mirrored with the edge pixel repeated (``[1..n, n..1]``, i.e.
  numpy's ``'symmetric'`` padding), as current MATLAB releases do. Older releases clamped
  (replicated the edge) instead; ``resize_matrix(..., boundary="replicate")`` gives that variant;
* the rows are resized before the columns (MATLAB's order for equal scale factors).

Each 1-D resize is a dense ``(out_len, in_len)`` weight matrix (MATLAB's trimming of all-zero
weight columns changes nothing in dense form), built once per size and cached, and applied to
the last two axes by matrix multiplication: ``out = R_h @ x @ R_w.T``. This is exact, fast for
batches ``(N, H, W)`` and, for torch tensors, differentiable on any device.

Unlike MATLAB on uint8 images, nothing is rounded between the two passes: inputs are treated
as real-valued images.
"""

from __future__ import annotations

import functools
import logging
import math
from typing import Any, TypeVar

import numpy as np

log = logging.getLogger(__name__)

ArrayT = TypeVar("ArrayT")

#: Keys' cubic-convolution parameter used by MATLAB (PIL and OpenCV use -0.75).
CUBIC_A = -0.5
#: Support of the unscaled cubic kernel.
KERNEL_WIDTH = 4.0
#: Elements (images x pixels) converted to float64 at a time in the numpy path.
_CHUNK_ELEMENTS = 1 << 23


def cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic kernel with a = -0.5 (MATLAB's ``cubic``), evaluated elementwise."""
    ax = np.abs(np.asarray(x, dtype=np.float64))
    ax2 = ax * ax
    ax3 = ax2 * ax
    inner = 1.5 * ax3 - 2.5 * ax2 + 1.0
    outer = -0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0
    return np.where(ax <= 1.0, inner, np.where(ax <= 2.0, outer, 0.0))


def output_length(in_len: int, scale: float) -> int:
    """MATLAB's output length ``ceil(in_len * scale)``.

    A product within 1e-9 of an integer counts as that integer, so that 99 * (1/3) gives 33
    and not 34 from floating-point fuzz.
    """
    if in_len < 1 or not (scale > 0 and math.isfinite(scale)):
        raise ValueError(f"cannot resize a length of {in_len} by scale {scale}")
    exact = in_len * scale
    nearest = round(exact)
    if abs(exact - nearest) <= 1e-9 * max(1.0, exact):
        return max(1, int(nearest))
    return max(1, math.ceil(exact))


@functools.lru_cache(maxsize=128)
def _resize_matrix_cached(
    in_len: int, out_len: int, scale: float, antialias: bool, boundary: str
) -> np.ndarray:
    log.debug("building resize matrix %d -> %d (scale %g)", in_len, out_len, scale)
    if scale < 1.0 and antialias:
        width = KERNEL_WIDTH / scale

        def kernel(d: np.ndarray) -> np.ndarray:
            return scale * cubic(scale * d)
    else:
        width = KERNEL_WIDTH
        kernel = cubic

    # Same operations, in the same order, as MATLAB's contributions(), so that sample
    # positions round identically.
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - width / 2.0)
    taps = int(math.ceil(width)) + 2
    idx = left[:, None] + np.arange(taps, dtype=np.float64)[None, :]  # 1-based
    weights = kernel(u[:, None] - idx)
    weights = weights / weights.sum(axis=1, keepdims=True)

    idx0 = idx.astype(np.int64) - 1  # 0-based
    if boundary == "symmetric":
        period = 2 * in_len
        m = np.mod(idx0, period)
        src = np.where(m < in_len, m, period - 1 - m)
    elif boundary == "replicate":
        src = np.clip(idx0, 0, in_len - 1)
    else:
        raise ValueError(f"boundary must be 'symmetric' or 'replicate', got {boundary!r}")

    mat = np.zeros((out_len, in_len), dtype=np.float64)
    rows = np.broadcast_to(np.arange(out_len)[:, None], src.shape)
    # Mirrored taps land on the same input pixel: accumulate, do not overwrite.
    np.add.at(mat, (rows, src), weights)
    mat.setflags(write=False)  # shared through the cache
    return mat


def resize_matrix(
    in_len: int,
    out_len: int,
    scale: float,
    antialias: bool = True,
    *,
    boundary: str = "symmetric",
) -> np.ndarray:
    """Dense float64 ``(out_len, in_len)`` matrix of MATLAB's 1-D bicubic resize.

    ``resize_matrix(n, m, s) @ v`` equals MATLAB's ``imresize`` of the column ``v`` to ``m``
    samples at scale ``s``. Rows sum to 1. The result is cached and read-only.
    """
    in_len, out_len, scale = int(in_len), int(out_len), float(scale)
    if in_len < 1 or out_len < 1:
        raise ValueError(f"lengths must be positive, got in_len={in_len}, out_len={out_len}")
    if not (scale > 0 and math.isfinite(scale)):
        raise ValueError(f"scale must be a positive finite number, got {scale}")
    return _resize_matrix_cached(in_len, out_len, scale, bool(antialias), boundary)


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch") and hasattr(x, "detach")


@functools.lru_cache(maxsize=64)
def _torch_matrix(in_len: int, out_len: int, scale: float, dtype: Any, device: Any) -> Any:
    import torch

    mat = resize_matrix(in_len, out_len, scale)
    return torch.from_numpy(mat.copy()).to(dtype=dtype, device=device)  # copy: cache is read-only


def _imresize_torch(x: Any, scale: float) -> Any:
    import torch

    if not x.is_floating_point():
        x = x.to(torch.get_default_dtype())
    h, w = x.shape[-2:]
    oh, ow = output_length(h, scale), output_length(w, scale)
    rh = _torch_matrix(h, oh, scale, x.dtype, x.device)
    rw = _torch_matrix(w, ow, scale, x.dtype, x.device)
    # Rows first, as MATLAB; matmul broadcasts over any leading (batch, channel) axes.
    return torch.matmul(torch.matmul(rh, x), rw.transpose(0, 1))


def _imresize_numpy(x: np.ndarray, scale: float) -> np.ndarray:
    out_dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.dtype(np.float64)
    lead, (h, w) = x.shape[:-2], x.shape[-2:]
    oh, ow = output_length(h, scale), output_length(w, scale)
    rh = resize_matrix(h, oh, scale)
    rwt = resize_matrix(w, ow, scale).T
    flat = x.reshape((-1, h, w))
    out = np.empty((flat.shape[0], oh, ow), dtype=out_dtype)
    # Chunks bound the float64 working copy (shards may be memory-mapped and large).
    step = max(1, _CHUNK_ELEMENTS // max(1, h * w))
    for start in range(0, flat.shape[0], step):
        block = np.asarray(flat[start : start + step], dtype=np.float64)
        out[start : start + step] = np.matmul(np.matmul(rh, block), rwt)
    return out.reshape(lead + (oh, ow))


def imresize(x: ArrayT, scale: float) -> ArrayT:
    """MATLAB ``imresize(x, scale)`` (bicubic, antialiased) over the last two axes.

    ``x`` is a numpy array or a torch tensor with at least two axes; leading axes are kept.
    The output size is ``ceil(size * scale)``. numpy inputs are computed in float64 and
    returned in their own float dtype (integers give float64); torch tensors are computed in
    their dtype (non-float tensors in the default float dtype) on their device, and gradients
    flow through. Values are not clipped (bicubic overshoots near edges, as in MATLAB).
    """
    scale = float(scale)
    if not (scale > 0 and math.isfinite(scale)):
        raise ValueError(f"scale must be a positive finite number, got {scale}")
    if _is_torch(x):
        if x.dim() < 2:
            raise ValueError(f"imresize needs at least 2 axes, got shape {tuple(x.shape)}")
        return _imresize_torch(x, scale)  # type: ignore[return-value]
    arr = np.asarray(x)
    if arr.ndim < 2:
        raise ValueError(f"imresize needs at least 2 axes, got shape {arr.shape}")
    return _imresize_numpy(arr, scale)  # type: ignore[return-value]


def _check_scale(scale: Any) -> int:
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or int(scale) < 1:
        raise ValueError(f"SR scale must be a positive integer (2, 3, 4 or 8), got {scale!r}")
    return int(scale)


def downscale(hr: ArrayT, scale: int) -> ArrayT:
    """LR image(s) from HR: ``imresize(hr, 1/scale)``, clipped to [0, 1].

    The shape's last two axes must divide by ``scale`` (else ValueError naming both), so the
    LR is exactly ``(H/scale, W/scale)``. MATLAB leaves float outputs unclipped; we clip
    because shards hold values in [0, 1] (as MATLAB does for uint8 images, the usual SR case).
    numpy input gives float32; torch input keeps its dtype and device.
    """
    s = _check_scale(scale)
    shape = tuple(hr.shape)
    if len(shape) < 2:
        raise ValueError(f"HR must have at least 2 axes (H, W), got shape {shape}")
    h, w = shape[-2:]
    if h % s or w % s:
        raise ValueError(
            f"HR shape {shape} does not divide by scale {s}: height and width must be "
            f"multiples of {s} (crop or pad the HR images first)"
        )
    lr = imresize(hr, 1.0 / s)
    if _is_torch(lr):
        return lr.clamp(0.0, 1.0)  # type: ignore[attr-defined,return-value]
    return np.clip(lr, 0.0, 1.0).astype(np.float32, copy=False)  # type: ignore[return-value]


def upscale(lr: ArrayT, scale: int, *, clip: bool = False) -> ArrayT:
    """The Bicubic method: ``imresize(lr, scale)`` with the same kernel as the degradation.

    numpy or torch (differentiable, any device, keeps leading axes). Not clipped unless
    ``clip=True``; writers of SR shards clamp to [0, 1] anyway.
    """
    s = _check_scale(scale)
    sr = imresize(lr, float(s))
    if clip:
        if _is_torch(sr):
            return sr.clamp(0.0, 1.0)  # type: ignore[attr-defined,return-value]
        return np.clip(sr, 0.0, 1.0)  # type: ignore[return-value]
    return sr
