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

Beside it sits a registry of physical LR models, ``degrade(images, scale, kind, seed)``:
``bicubic`` (``downscale``, the default and the paper's), ``kspace`` (MRI: central k-space,
optional window and Rician noise) and ``pet`` (Gaussian PSF, area downsampling, Poisson
counts). Each is documented where it is registered; docs/degradation_and_metrics.md gives
their sources.
"""

from __future__ import annotations

import functools
import logging
import math
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
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


# =============================================================================================
# Degradation models: ``degrade(images, scale, kind, seed, **params)``
#
# Every model maps float images (N, H, W) in [0, 1] to (N, H // scale, W // scale) float32 in
# [0, 1]. H and W must divide by the scale (as for ``downscale``). LR pixel ``j`` (0-based)
# sits at HR pixel coordinate ``j * scale + (scale - 1) / 2``, the centre of its scale x scale
# block, in every model: the geometry of MATLAB's imresize, so the Bicubic method and the SR
# networks see the same pixel grid whatever the model. The deterministic part of ``kspace`` and
# ``pet`` is a separable linear operator ``A_h @ x @ A_w.T`` (dense float64 matrices, built once
# per size and cached, as for ``resize_matrix``); noise is drawn per image from
# ``numpy.random.default_rng([seed, index])``, so a shard degraded in chunks (``first_index``)
# equals the same shard degraded in one call.

#: FWHM of a Gaussian in units of its standard deviation, 2 sqrt(2 ln 2).
FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))
#: Dataset modalities a model can be checked against.
MODALITIES = ("mri", "pet")
#: Input values may stray this far outside [0, 1] (float round-off) before they are refused.
_RANGE_TOL = 1e-6

Params = dict[str, Any]
RngFor = Callable[[int], np.random.Generator]
Operator = Callable[[np.ndarray, int, Params, RngFor], np.ndarray]


@dataclass(frozen=True)
class Degradation:
    """A registered LR model.

    ``modalities`` are the dataset modalities it models (empty: any); ``defaults`` holds every
    parameter with its default value; ``validate`` returns the checked, normalised parameters
    (raising a one-line ValueError); ``stochastic`` says whether given parameters draw noise;
    ``operator(block, scale, params, rng_for)`` degrades one chunk of images.
    """

    name: str
    modalities: tuple[str, ...]
    defaults: Mapping[str, Any]
    validate: Callable[[Params], Params]
    stochastic: Callable[[Params], bool]
    operator: Operator
    summary: str


_DEGRADATIONS: dict[str, Degradation] = {}


def _register(
    name: str,
    modalities: tuple[str, ...],
    defaults: Mapping[str, Any],
    validate: Callable[[Params], Params],
    noise: str | None = None,
) -> Callable[[Operator], Operator]:
    """Register the decorated operator as ``name``. ``noise``: the parameter that, set to None,
    makes the model noise-free (None: never stochastic). The summary is the first line of the
    operator's docstring."""

    def add(operator: Operator) -> Operator:
        if name in _DEGRADATIONS:
            raise ValueError(f"degradation {name!r} is registered twice")
        doc = (operator.__doc__ or name).strip().splitlines()[0]
        _DEGRADATIONS[name] = Degradation(
            name=name,
            modalities=modalities,
            defaults=types.MappingProxyType(dict(defaults)),
            validate=validate,
            stochastic=lambda p: noise is not None and p[noise] is not None,
            operator=operator,
            summary=doc.rstrip("."),
        )
        return operator

    return add


def degradation_kinds() -> tuple[str, ...]:
    """Names of the registered models, the default (``bicubic``) first."""
    return tuple(_DEGRADATIONS)


def get_degradation(kind: str) -> Degradation:
    """The registered model ``kind``; ValueError listing the known ones otherwise."""
    model = _DEGRADATIONS.get(kind) if isinstance(kind, str) else None
    if model is None:
        known = ", ".join(_DEGRADATIONS)
        raise ValueError(f"unknown degradation {kind!r}; expected one of: {known}")
    return model


def resolve_params(kind: str, **params: Any) -> Params:
    """Every parameter of ``kind``: the given ones checked, the others at their defaults.

    Unknown names and invalid values raise a one-line ValueError naming the allowed ones. The
    result can be passed back as ``**params`` (for provenance files and job settings).
    """
    model = get_degradation(kind)
    unknown = sorted(set(params) - set(model.defaults))
    if unknown:
        allowed = ", ".join(model.defaults) if model.defaults else "none"
        raise ValueError(
            f"degradation {kind!r} has no parameter {', '.join(map(repr, unknown))}; "
            f"its parameters are: {allowed}"
        )
    return model.validate({**model.defaults, **params})


def is_stochastic(kind: str, **params: Any) -> bool:
    """Whether ``kind`` with these parameters draws noise (its output then depends on seed)."""
    return get_degradation(kind).stochastic(resolve_params(kind, **params))


def fits(kind: str, modality: str) -> bool:
    """Whether model ``kind`` models acquisitions of ``modality`` (``mri`` or ``pet``); an
    unknown kind or modality is a ValueError."""
    model = get_degradation(kind)
    mod = _check_modality(modality)
    return not model.modalities or mod in model.modalities


def _check_modality(modality: Any) -> str:
    mod = modality.lower() if isinstance(modality, str) else modality
    if mod not in MODALITIES:
        raise ValueError(f"unknown modality {modality!r}; expected one of: {', '.join(MODALITIES)}")
    return mod


def check_fits(kind: str, modality: str) -> None:
    """Refuse a model that does not describe the dataset's modality, in one line, e.g.
    ``degradation 'kspace' models MRI acquisition; dataset modality is PET``."""
    model = get_degradation(kind)
    mod = _check_modality(modality)
    if not fits(kind, mod):
        models = " or ".join(m.upper() for m in model.modalities)
        raise ValueError(
            f"degradation {kind!r} models {models} acquisition; dataset modality is {mod.upper()}"
        )


def _index_arg(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def _check_divides(shape: tuple[int, ...], s: int) -> None:
    # Same rule and wording as ``downscale``.
    h, w = shape[-2:]
    if h % s or w % s:
        raise ValueError(
            f"HR shape {shape} does not divide by scale {s}: height and width must be "
            f"multiples of {s} (crop or pad the HR images first)"
        )


def _check_range(block: np.ndarray, first: int) -> None:
    if block.size == 0:
        return
    finite = np.isfinite(block).reshape(len(block), -1).all(axis=1)
    if not finite.all():
        bad = first + int(np.flatnonzero(~finite)[0])
        raise ValueError(f"images must be finite; image {bad} has NaN or inf values")
    lo = block.reshape(len(block), -1).min(axis=1)
    hi = block.reshape(len(block), -1).max(axis=1)
    out = (lo < -_RANGE_TOL) | (hi > 1.0 + _RANGE_TOL)
    if out.any():
        i = int(np.flatnonzero(out)[0])
        raise ValueError(
            f"images must lie in [0, 1]; image {first + i} has values in "
            f"[{float(lo[i]):.4g}, {float(hi[i]):.4g}]"
        )


def degrade(
    images: Any,
    scale: int,
    kind: str = "bicubic",
    seed: int = 0,
    *,
    first_index: int = 0,
    **params: Any,
) -> np.ndarray:
    """LR images from HR ones with the degradation model ``kind``.

    ``images``: a numpy array (or memory-mapped shard) of shape (N, H, W), or one (H, W)
    image, with values in [0, 1]; H and W must divide by ``scale``. Returns float32 of shape
    (N, H // scale, W // scale) (or (H // scale, W // scale)), clipped to [0, 1].
    ``params`` are the model's parameters (see ``resolve_params`` and each model's docs);
    ``seed`` (a non-negative integer) fixes its noise, image ``i`` drawing from
    ``default_rng([seed, first_index + i])``: pass ``first_index`` when degrading a set in
    chunks so that every image gets the noise it would get in one call. ``bicubic`` equals
    ``downscale`` exactly. Unknown kinds, parameters, bad shapes and values outside [0, 1]
    raise ValueError.
    """
    model = get_degradation(kind)
    resolved = resolve_params(kind, **params)
    s = _check_scale(scale)
    seed = _index_arg(seed, "seed")
    first_index = _index_arg(first_index, "first_index")
    arr = images if isinstance(images, np.ndarray) else np.asarray(images)
    shape = tuple(arr.shape)
    if arr.ndim not in (2, 3):
        raise ValueError(f"images must have shape (N, H, W) or (H, W), got {shape}")
    _check_divides(shape, s)
    single = arr.ndim == 2
    if single:
        arr = arr[None]
    n, h, w = arr.shape
    out = np.empty((n, h // s, w // s), dtype=np.float32)
    step = max(1, _CHUNK_ELEMENTS // max(1, h * w))
    for start in range(0, n, step):
        block = np.asarray(arr[start : start + step])
        _check_range(block, first_index + start)

        def rng_for(i: int, _base: int = first_index + start) -> np.random.Generator:
            return np.random.default_rng([seed, _base + i])

        lr = model.operator(block, s, resolved, rng_for)
        out[start : start + len(block)] = np.clip(lr, 0.0, 1.0)
    return out[0] if single else out


# --------------------------------------------------------------------------- parameter checks


def _number(
    kind: str,
    name: str,
    value: Any,
    lo: float,
    hi: float = math.inf,
    *,
    lo_open: bool = True,
    hi_open: bool = False,
) -> float:
    """``value`` as a float inside the interval, or a one-line ValueError naming it."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))
    x = float(value) if ok else math.nan
    inside = (
        math.isfinite(x)
        and (x > lo if lo_open else x >= lo)
        and (x < hi if hi_open or math.isinf(hi) else x <= hi)
    )
    if not inside:
        left = "(" if lo_open else "["
        right = ")" if hi_open or math.isinf(hi) else "]"
        top = "inf" if math.isinf(hi) else f"{hi:g}"
        raise ValueError(
            f"degradation {kind!r}: {name} must be a number in {left}{lo:g}, {top}{right}, "
            f"got {value!r}"
        )
    return x


# --------------------------------------------------------------------------- bicubic


def _bicubic_validate(params: Params) -> Params:
    return params


@_register("bicubic", (), {}, _bicubic_validate)
def _bicubic(block: np.ndarray, s: int, params: Params, rng_for: RngFor) -> np.ndarray:
    """MATLAB imresize(hr, 1/scale), bicubic a = -0.5 with antialiasing (the paper's LR).

    ``bicubic``: ``downscale`` (MATLAB's antialiased bicubic ``imresize``, clipped). No
    parameters, no noise; fits any modality. The LR protocol of the paper and of the natural
    image SR literature (see the module docstring)."""
    return downscale(block, s)


# --------------------------------------------------------------------------- kspace (MRI)

KSPACE_WINDOWS = ("hamming", "tukey")
KSPACE_DEFAULTS = types.MappingProxyType({"window": None, "tukey_alpha": 0.5, "snr": None})


def _kspace_validate(params: Params) -> Params:
    p = dict(params)
    window = p["window"]
    if isinstance(window, str) and window.lower() == "none":
        window = None
    if isinstance(window, str):
        window = window.lower()
    if window is not None and window not in KSPACE_WINDOWS:
        raise ValueError(
            f"degradation 'kspace': window must be None, 'hamming' or 'tukey', got {p['window']!r}"
        )
    p["window"] = window
    p["tukey_alpha"] = _number("kspace", "tukey_alpha", p["tukey_alpha"], 0.0, 1.0)
    if window != "tukey" and p["tukey_alpha"] != KSPACE_DEFAULTS["tukey_alpha"]:
        raise ValueError(
            "degradation 'kspace': tukey_alpha applies only to window='tukey' "
            f"(window is {window!r})"
        )
    if p["snr"] is not None:
        p["snr"] = _number("kspace", "snr", p["snr"], 0.0)
    return p


def _kspace_window(nu: np.ndarray, window: str | None, alpha: float) -> np.ndarray:
    """Window over normalised frequency ``nu`` in [-1, 1] (1: the LR Nyquist frequency)."""
    a = np.abs(nu)
    if window is None:
        return np.ones_like(a)
    if window == "hamming":
        return 0.54 + 0.46 * np.cos(np.pi * a)
    flat = 1.0 - alpha  # tukey: flat centre, raised-cosine taper over the outer alpha
    taper = 0.5 * (1.0 + np.cos(np.pi * np.clip(a - flat, 0.0, None) / alpha))
    return np.where(a <= flat, 1.0, taper)


def _cosine_sum(freqs: np.ndarray, weight: np.ndarray, dist: np.ndarray, n: int) -> np.ndarray:
    """``(1/n) sum_f w_f cos(2 pi f dist / n)``, read-only (it is cached): the inverse DFT of
    a real, even-weighted band of length-``n`` frequencies, evaluated at offsets ``dist``."""
    mat = np.zeros(dist.shape, dtype=np.float64)
    for f, c in zip(freqs, weight, strict=True):
        mat += c * np.cos((2.0 * np.pi * f / n) * dist)
    mat /= n
    mat.setflags(write=False)
    return mat


@functools.lru_cache(maxsize=64)
def _kspace_matrix(in_len: int, s: int, window: str | None, alpha: float) -> np.ndarray:
    """(m, M) real matrix: keep the central m = M / s frequencies of a length-M signal, window
    them, and evaluate the band-limited result at the LR pixel centres (HR coordinates
    ``j * s + (s - 1) / 2``), on the HR intensity scale.

    Frequencies f (cycles per field of view) run over -m/2 .. m/2; for even m the two
    Nyquist bins +-m/2 each count half (they fold onto one LR bin), which keeps the spectrum
    Hermitian, so a real image gives a real LR image. Entry (j, i) is
    ``(1/M) sum_f c_f w_f cos(2 pi f (x_j - i) / M)``.
    """
    m = in_len // s
    freqs = np.arange(-(m // 2), m // 2 + 1, dtype=np.float64)
    weight = np.ones_like(freqs)
    if m % 2 == 0:
        weight[[0, -1]] = 0.5
    weight = weight * _kspace_window(freqs / (m / 2.0), window, alpha)
    log.debug("building k-space matrix %d -> %d (window %s)", in_len, m, window)
    x = np.arange(m, dtype=np.float64) * s + (s - 1) / 2.0
    return _cosine_sum(freqs, weight, x[:, None] - np.arange(in_len, dtype=np.float64), in_len)


@functools.lru_cache(maxsize=64)
def _kspace_noise_filter(m: int, window: str | None, alpha: float) -> np.ndarray:
    """(m, m) real matrix applying the k-space window to LR-grid noise (white before it)."""
    freqs = np.arange(-(m // 2), m - m // 2, dtype=np.float64)  # the m LR bins
    weight = _kspace_window(freqs / (m / 2.0), window, alpha)
    lag = np.arange(m, dtype=np.float64)[:, None] - np.arange(m, dtype=np.float64)[None, :]
    return _cosine_sum(freqs, weight, lag, m)


@_register("kspace", ("mri",), KSPACE_DEFAULTS, _kspace_validate, noise="snr")
def _kspace(block: np.ndarray, s: int, params: Params, rng_for: RngFor) -> np.ndarray:
    """MRI acquired at low resolution: central 1/scale of 2D k-space, magnitude image.

    ``kspace`` (MRI): a low-resolution acquisition of the same field of view.

    Each slice's 2D k-space (its DFT) is cut to the central ``1/scale`` of each axis, which is
    what scanning fewer phase/frequency encodes over the same field of view records (Chen et
    al.'s DCSRN / mDCSRN make LR from HCP volumes this way). Nothing is windowed by default, so
    edges ring (Gibbs); ``window="hamming"`` (0.54 + 0.46 cos(pi nu)) or ``"tukey"`` (flat,
    then a raised-cosine taper over the outer ``tukey_alpha`` of the band; default 0.5)
    apodises the kept band, separably over the two axes, trading ringing for blur.
    Intensities stay on the HR scale (a constant image keeps its value).

    ``snr`` (default None: no noise) adds complex Gaussian noise of standard deviation
    ``1 / snr`` per channel (real and imaginary) to the acquired LR data, where 1.0 is the
    top of the [0, 1] intensity scale, i.e. SNR against full-scale signal of the unwindowed
    image; the noise is white in k-space, so the window filters it as it does the signal.
    The output is the magnitude image, whose noise is Rician (Gudbjartsson and Patz 1995):
    biased upwards in the background, near Gaussian where signal is high. Without noise the
    output is the magnitude of the (real) band-limited image.
    """
    x = np.asarray(block, dtype=np.float64)
    window, alpha, snr = params["window"], params["tukey_alpha"], params["snr"]
    ah = _kspace_matrix(x.shape[-2], s, window, alpha)
    aw = _kspace_matrix(x.shape[-1], s, window, alpha)
    lr = np.matmul(np.matmul(ah, x), aw.T)
    if snr is None:
        return np.abs(lr)
    sigma = 1.0 / snr
    mh, mw = lr.shape[-2:]
    bh = _kspace_noise_filter(mh, window, alpha) if window else None
    bw = _kspace_noise_filter(mw, window, alpha) if window else None
    out = np.empty_like(lr)
    for i in range(len(lr)):
        noise = rng_for(i).standard_normal((2, mh, mw))
        if window:
            noise = np.matmul(np.matmul(bh, noise), bw.T)
        out[i] = np.hypot(lr[i] + sigma * noise[0], sigma * noise[1])
    return out


# --------------------------------------------------------------------------- pet (PET)

PET_DEFAULTS = types.MappingProxyType(
    {
        "voxel_mm": 1.5,
        "fwhm_mm": 6.0,
        "hr_fwhm_mm": 0.0,
        "dose": 1.0,
        "full_dose_counts": 1000.0,
    }
)


def _pet_validate(params: Params) -> Params:
    p = dict(params)
    p["voxel_mm"] = _number("pet", "voxel_mm", p["voxel_mm"], 0.0)
    p["fwhm_mm"] = _number("pet", "fwhm_mm", p["fwhm_mm"], 0.0)
    p["hr_fwhm_mm"] = _number(
        "pet", "hr_fwhm_mm", p["hr_fwhm_mm"], 0.0, p["fwhm_mm"], lo_open=False, hi_open=True
    )
    p["dose"] = _number("pet", "dose", p["dose"], 0.0, 1.0)
    if p["full_dose_counts"] is not None:
        p["full_dose_counts"] = _number("pet", "full_dose_counts", p["full_dose_counts"], 0.0)
    elif p["dose"] != 1.0:
        raise ValueError(
            "degradation 'pet': dose has no effect without counts (full_dose_counts is None)"
        )
    return p


def pet_kernel_sigma_px(params: Params) -> float:
    """Standard deviation (HR pixels) of the Gaussian ``pet`` applies: the one that takes an
    HR resolution of ``hr_fwhm_mm`` to ``fwhm_mm`` (Gaussians add in quadrature)."""
    fwhm = math.sqrt(params["fwhm_mm"] ** 2 - params["hr_fwhm_mm"] ** 2)
    return fwhm / FWHM_PER_SIGMA / params["voxel_mm"]


@functools.lru_cache(maxsize=64)
def _pet_matrix(in_len: int, s: int, sigma_px: float) -> np.ndarray:
    """(m, M) real matrix: Gaussian blur (sampled kernel, truncated at 4 sigma, normalised;
    mirrored borders as numpy's 'symmetric' pad), then the mean of each block of s pixels."""
    radius = int(4.0 * sigma_px + 0.5)
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / sigma_px) ** 2) if radius else np.ones(1)
    kernel /= kernel.sum()
    src = np.arange(in_len)[:, None] + offsets[None, :]
    period = 2 * in_len
    src = np.mod(src, period)
    src = np.where(src < in_len, src, period - 1 - src)
    blur = np.zeros((in_len, in_len), dtype=np.float64)
    rows = np.broadcast_to(np.arange(in_len)[:, None], src.shape)
    np.add.at(blur, (rows, src), np.broadcast_to(kernel, src.shape))
    m = in_len // s
    area = np.zeros((m, in_len), dtype=np.float64)
    area[np.repeat(np.arange(m), s), np.arange(m * s)] = 1.0 / s
    mat = area @ blur
    mat.setflags(write=False)
    return mat


@_register("pet", ("pet",), PET_DEFAULTS, _pet_validate, noise="full_dose_counts")
def _pet(block: np.ndarray, s: int, params: Params, rng_for: RngFor) -> np.ndarray:
    """PET at lower resolution and dose: Gaussian PSF, area downsampling, Poisson counts.

    ``pet`` (PET): an image-domain model of a lower-resolution, lower-dose scan.

    1. PSF: a Gaussian that brings the HR image's resolution ``hr_fwhm_mm`` (default 0: the HR
       image is taken as sharp) to the target ``fwhm_mm`` (default 6 mm), on HR pixels of
       ``voxel_mm`` (default 1.5 mm, ADNI's standard PET grid); FWHM = 2 sqrt(2 ln 2) sigma.
    2. Downsampling by area: the mean of each scale x scale block (a detector integrating over
       the LR voxel), which keeps the image mean.
    3. Counts: each LR pixel of value ``v`` becomes ``Poisson(v * full_dose_counts * dose) /
       (full_dose_counts * dose)``: ``full_dose_counts`` (default 1000) is the expected count
       of an LR pixel of full-scale intensity 1.0 at full dose and ``dose`` in (0, 1] (default
       1) the fraction injected. The mean is kept and the variance is ``v / (counts * dose)``,
       so it grows as 1 / dose. ``full_dose_counts=None`` switches noise off.

    This is image-domain simulation: real low-dose PET noise comes from reconstructing noisy
    projections (correlated, object-dependent, not Poisson per voxel); see the docs.
    """
    x = np.asarray(block, dtype=np.float64)
    sigma = pet_kernel_sigma_px(params)
    ph = _pet_matrix(x.shape[-2], s, sigma)
    pw = _pet_matrix(x.shape[-1], s, sigma)
    lr = np.matmul(np.matmul(ph, x), pw.T)
    counts = params["full_dose_counts"]
    if counts is None:
        return lr
    level = counts * params["dose"]
    out = np.empty_like(lr)
    for i in range(len(lr)):
        out[i] = rng_for(i).poisson(np.maximum(lr[i], 0.0) * level) / level
    return out
