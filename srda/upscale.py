"""``srda-bench upscale``: apply a trained SR network (``sr_model.pt``) to a user's own file.

Two kinds of input:

- a NIfTI volume (``.nii``/``.nii.gz``): super-resolved slice by slice along the plane the network
  was trained on, with the intensity handling and display orientation of training
  (``srda.data.slicing``), written as a float32 NIfTI that overlays the input in any viewer;
- a 2D image (``.png``/``.jpg``/``.jpeg``/``.tif``/``.tiff``/``.bmp``): read as grayscale in
  [0, 1] like ``ingest.load_image``, written as a PNG of the input's bit depth (8 or 16).

Geometry of the NIfTI output: each upsampled axis gets ``n * s`` voxels of size ``d / s``, and
voxel ``j`` of the output sits where input voxel coordinate ``(j + 0.5) / s - 0.5`` does, so the
outer edges of the field of view are unchanged (pixel-area alignment, as in MATLAB's imresize
and the Bicubic baseline). The through-plane axis is left as it is.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import torch
from nibabel.orientations import apply_orientation, axcodes2ornt, io_orientation, ornt_transform
from PIL import Image
from torch import nn
from tqdm import tqdm

from srda import registry
from srda.data.ingest import _NIFTI_ERRORS, _open_nifti, _read_gray, usable_affine
from srda.data.slicing import PLANE_AXIS, _to_display
from srda.errors import InputError, describe

logger = logging.getLogger(__name__)

SR_MODEL_FORMAT = 1  # the ``format`` that ``srda.run.save_sr_model`` writes
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
NIFTI_EXTS = (".nii", ".nii.gz")
# Orientation codes (``nib.aff2axcodes``) of the axis normal to each slicing plane.
PLANE_CODES = {"sagittal": "LR", "coronal": "PA", "axial": "IS"}
_REQUIRED_KEYS = ("format", "arch", "scale", "channels", "size", "state_dict")
_16BIT_MODES = ("I;16", "I;16B", "I;16L", "I")


@dataclass
class SRModel:
    """A rebuilt SR network and what it takes to apply it as in training."""

    net: nn.Module
    path: Path
    method: str
    arch: str
    scale: int
    channels: int
    plane: str
    clip_percentiles: tuple[float, float]


# --------------------------------------------------------------------------------------------
# model


def load_sr_model(path: str | os.PathLike[str]) -> SRModel:
    """Read an ``sr_model.pt`` and rebuild its network with the registry (``import baselines``
    first); the weights must match the architecture exactly (strict loading)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(
            path,
            "model checkpoint does not exist"
            if not path.exists()
            else "model checkpoint is not a file",
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for damaged or foreign files
        raise InputError(path, f"cannot read model checkpoint ({describe(exc)})") from exc
    if not isinstance(payload, dict) or "format" not in payload:
        raise InputError(path, "not an srda-bench sr_model.pt (no 'format' entry)")
    if payload["format"] != SR_MODEL_FORMAT:
        raise InputError(
            path,
            f"unknown sr_model.pt format {payload['format']!r}; this version reads format "
            f"{SR_MODEL_FORMAT}",
        )
    missing = [k for k in _REQUIRED_KEYS if k not in payload]
    if missing:
        raise InputError(path, f"sr_model.pt lacks {', '.join(missing)}")

    plane = str(payload.get("plane", "axial"))
    if plane not in PLANE_AXIS:
        raise InputError(path, f"unknown plane {plane!r}; expected one of {', '.join(PLANE_AXIS)}")
    clip = payload.get("clip_percentiles", [0.5, 99.5])
    try:
        lo_pct, hi_pct = (float(c) for c in clip)
        scale, channels = int(payload["scale"]), int(payload["channels"])
    except (TypeError, ValueError) as exc:
        raise InputError(path, f"bad scale, channels or clip_percentiles ({exc})") from exc
    if not 0 <= lo_pct < hi_pct <= 100:
        raise InputError(path, f"bad clip_percentiles {clip!r}")
    if scale < 1 or channels < 1:
        raise InputError(path, f"bad scale {scale} or channels {channels}")

    arch = str(payload["arch"])
    overrides: dict[str, Any] = dict(payload.get("overrides") or {})
    try:
        net = registry.build(
            arch, scale=scale, channels=channels, size=payload["size"], **overrides
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(
            path, f"cannot rebuild '{arch}': {exc.args[0] if exc.args else exc}"
        ) from exc
    try:
        net.load_state_dict(payload["state_dict"], strict=True)
    except (RuntimeError, TypeError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(path, f"weights do not fit architecture '{arch}' ({first[:300]})") from exc
    net.eval()
    method = str(payload.get("method", arch))
    logger.info(
        "%s: %s (arch %s, size %s) x%d, %s plane, %d parameters",
        path,
        method,
        arch,
        payload["size"],
        scale,
        plane,
        sum(p.numel() for p in net.parameters()),
    )
    return SRModel(net, path, method, arch, scale, channels, plane, (lo_pct, hi_pct))


def resolve_device(name: str = "auto") -> torch.device:
    """``auto``: CUDA when visible, else CPU; asking for CUDA without one is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("--device", "cuda requested but no CUDA device is visible")
    if name not in ("cpu", "cuda"):
        raise InputError("--device", f"unknown device {name!r}; expected cpu, cuda or auto")
    return torch.device(name)


@torch.inference_mode()
def super_resolve_slices(
    model: SRModel,
    slices: np.ndarray,
    device: torch.device,
    batch_size: int = 4,
    desc: str = "upscaling",
) -> np.ndarray:
    """(n, h, w) float32 in [0, 1] -> (n, h*s, w*s) float32 clamped to [0, 1], in batches."""
    if batch_size < 1:
        raise InputError("--batch-size", f"must be at least 1, got {batch_size}")
    n, h, w = slices.shape
    s = model.scale
    out = np.empty((n, h * s, w * s), dtype=np.float32)
    net = model.net.to(device).eval()
    for start in tqdm(range(0, n, batch_size), desc=desc, unit="batch"):
        batch = torch.from_numpy(np.ascontiguousarray(slices[start : start + batch_size]))
        x = batch[:, None].to(device=device, dtype=torch.float32)
        if model.channels > 1:  # grayscale into every channel; the output channels averaged
            x = x.expand(-1, model.channels, -1, -1)
        y = net(x)
        if not isinstance(y, torch.Tensor) or y.shape[-2:] != (h * s, w * s):
            got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
            raise InputError(
                model.path,
                f"network returned {got} for a {h}x{w} input; expected {h * s}x{w * s} (x{s})",
            )
        y = y.float().mean(dim=1).clamp_(0.0, 1.0)
        out[start : start + len(batch)] = y.cpu().numpy()
    return out


# --------------------------------------------------------------------------------------------
# geometry


def from_display(images: np.ndarray) -> np.ndarray:
    """Inverse of ``slicing._to_display``: (n, rows, cols) -> (a, b, n) canonical in-plane axes."""
    return np.ascontiguousarray(np.flip(images.transpose(2, 1, 0), 1))


def upsampled_affine(affine: np.ndarray, axes: tuple[int, ...], scale: int) -> np.ndarray:
    """Voxel-to-world matrix of a grid upsampled by ``scale`` along the array ``axes``: new
    index j sits at old index (j + 0.5) / scale - 0.5, so the field of view is unchanged."""
    m = np.eye(4)
    for ax in axes:
        m[ax, ax] = 1.0 / scale
        m[ax, 3] = 0.5 / scale - 0.5
    return np.asarray(affine, dtype=np.float64) @ m


def slice_axis(affine: np.ndarray, plane: str) -> tuple[int, tuple[str | None, ...]]:
    """The array axis normal to ``plane`` (from the orientation codes) and the codes."""
    codes = nib.aff2axcodes(affine)
    hits = [i for i, c in enumerate(codes) if c is not None and c in PLANE_CODES[plane]]
    if len(hits) != 1:
        raise ValueError(f"no unique {plane} axis in orientation {codes}")
    return hits[0], codes


# --------------------------------------------------------------------------------------------
# files


def _kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(NIFTI_EXTS):
        return "nifti"
    if name.endswith(IMAGE_EXTS):
        return "image"
    return "other"


@contextmanager
def _atomic_output(path: Path) -> Iterator[Path]:
    """A temporary file next to ``path`` (same extension, so writers pick the same format);
    it replaces ``path`` only when the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = ".nii.gz" if path.name.lower().endswith(".nii.gz") else path.suffix
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; give it a normal file's mode
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _read_volume(path: Path) -> tuple[nib.Nifti1Image, np.ndarray]:
    """The image and its voxels (float32, scaled) as a 3D array in the file's own axis order."""
    img = _open_nifti(path, "volume")
    shape = tuple(int(s) for s in img.shape)
    if len(shape) > 3 and int(np.prod(shape[3:])) > 1:
        raise InputError(
            path, f"{len(shape)}D volume with {int(np.prod(shape[3:]))} frames; give one frame"
        )
    if len(shape) < 2 or min(shape) < 1:
        raise InputError(path, f"image of shape {shape}; expected a 3D volume")
    spatial = (shape + (1,))[:3]
    if not usable_affine(img.affine):
        raise InputError(path, f"volume has no usable affine (voxel-to-world matrix): {img.affine}")
    try:
        data = np.asarray(img.get_fdata(dtype=np.float32)).reshape(spatial)
    except _NIFTI_ERRORS as exc:
        raise InputError(
            path, f"cannot read the voxel data; the file is truncated or corrupt ({describe(exc)})"
        ) from exc
    n_nan = int(np.isnan(data).sum())
    if n_nan:
        raise InputError(path, f"volume contains {n_nan} NaN voxels")
    n_inf = int(np.isinf(data).sum())
    if n_inf:
        raise InputError(path, f"volume contains {n_inf} infinite voxels")
    return img, data


def upscale_volume(
    model: SRModel,
    in_path: Path,
    out_path: Path,
    device: torch.device,
    batch_size: int = 4,
) -> Path:
    """Super-resolve a NIfTI volume slice by slice; write a float32 NIfTI overlaying it."""
    img, data = _read_volume(in_path)
    s = model.scale
    try:
        axis, codes = slice_axis(img.affine, model.plane)
    except ValueError as exc:
        raise InputError(in_path, str(exc)) from exc
    in_plane = tuple(i for i in range(3) if i != axis)
    shape = data.shape
    if min(shape[i] for i in in_plane) < 2:
        raise InputError(
            in_path, f"shape {shape} has fewer than 2 voxels in the {model.plane} plane"
        )

    # Intensities as in training: volume percentiles -> [0, 1], clipped (slicing.normalise).
    lo, hi = (float(v) for v in np.percentile(data, model.clip_percentiles))
    if not hi > lo:
        raise InputError(
            in_path, f"intensities are constant between percentiles {model.clip_percentiles}"
        )
    norm = np.clip((data - np.float32(lo)) / np.float32(hi - lo), 0.0, 1.0).astype(np.float32)
    del data

    # Slices in the display orientation of training: canonical RAS, plane axis last, flipped.
    ornt = io_orientation(img.affine)
    canon_axis = PLANE_AXIS[model.plane]
    slab = np.moveaxis(apply_orientation(norm, ornt), canon_axis, -1)
    slices = _to_display(slab)
    del norm, slab
    logger.info(
        "%s: shape %s, orientation %s; %d %s slices (array axis %d) of %dx%d -> %dx%d; "
        "intensities %.4g..%.4g (percentiles %g, %g) -> [0, 1]",
        in_path,
        img.shape,
        "".join(c or "?" for c in codes),
        len(slices),
        model.plane,
        axis,
        *slices.shape[1:],
        slices.shape[1] * s,
        slices.shape[2] * s,
        lo,
        hi,
        *model.clip_percentiles,
    )
    sr = super_resolve_slices(model, slices, device, batch_size, desc=f"{in_path.name} x{s}")
    del slices

    # Back to the file's own axis order, then to the original intensity range.
    canon = np.moveaxis(from_display(sr), -1, canon_axis)
    del sr
    out = apply_orientation(canon, ornt_transform(axcodes2ornt("RAS"), ornt))
    del canon
    out = np.ascontiguousarray(out, dtype=np.float32)
    out *= np.float32(hi - lo)
    out += np.float32(lo)
    expected = tuple(n * s if i in in_plane else n for i, n in enumerate(shape))
    if out.shape != expected:  # geometry bug guard: never write a misplaced volume
        raise RuntimeError(f"upscaled shape {out.shape} != expected {expected}")

    hdr = img.header.copy()
    hdr.set_data_shape(out.shape)
    hdr.set_data_dtype(np.float32)
    zooms = [float(z) for z in img.header.get_zooms()[:3]]
    zooms += [1.0] * (3 - len(zooms))
    hdr.set_zooms(tuple(z / s if i in in_plane else z for i, z in enumerate(zooms)))
    hdr.set_slope_inter(None, None)
    hdr["descrip"] = f"srda-bench upscale x{s} {model.method}".encode("ascii", "replace")[:79]
    qform, q_code = img.header.get_qform(coded=False), int(img.header["qform_code"])
    sform, s_code = img.header.get_sform(coded=False), int(img.header["sform_code"])
    new_affine = upsampled_affine(img.affine, in_plane, s)
    result = type(img)(out, new_affine, header=hdr)
    result.set_qform(upsampled_affine(qform, in_plane, s), code=q_code)
    result.set_sform(upsampled_affine(sform, in_plane, s), code=s_code)
    with _atomic_output(out_path) as tmp:
        nib.save(result, str(tmp))
    logger.info(
        "wrote %s: shape %s, voxel %s mm",
        out_path,
        out.shape,
        "x".join(f"{z:.4g}" for z in result.header.get_zooms()[:3]),
    )
    return out_path


def _is_16bit(path: Path) -> bool:
    try:
        with Image.open(path) as im:
            return im.mode in _16BIT_MODES
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(path, f"cannot read image ({describe(exc)})") from exc


def upscale_image(
    model: SRModel,
    in_path: Path,
    out_path: Path,
    device: torch.device,
    batch_size: int = 4,
) -> Path:
    """Super-resolve a 2D image (grayscale in [0, 1]); write an 8- or 16-bit PNG."""
    image = _read_gray(in_path)  # raises InputError naming the file
    sixteen = _is_16bit(in_path)
    s = model.scale
    logger.info(
        "%s: %dx%d (%d-bit) -> %dx%d",
        in_path,
        image.shape[1],
        image.shape[0],
        16 if sixteen else 8,
        image.shape[1] * s,
        image.shape[0] * s,
    )
    sr = super_resolve_slices(model, image[None], device, batch_size, desc=f"{in_path.name} x{s}")
    top = 65535 if sixteen else 255
    pixels = np.rint(sr[0] * top).astype(np.uint16 if sixteen else np.uint8)
    with _atomic_output(out_path) as tmp:
        Image.fromarray(pixels).save(tmp, format="PNG")
    logger.info("wrote %s: %dx%d", out_path, pixels.shape[1], pixels.shape[0])
    return out_path


def upscale_file(
    checkpoint: str | os.PathLike[str],
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    device: str = "auto",
    batch_size: int = 4,
) -> Path:
    """Super-resolve one NIfTI volume or 2D image with a saved SR network (``import baselines``
    first, so the registry knows every architecture)."""
    src, dst = Path(input_path).expanduser(), Path(output_path).expanduser()
    if not src.exists():
        raise InputError(src, "input does not exist")
    if not src.is_file():
        raise InputError(src, "input is not a file")
    kind = _kind(src)
    if kind == "other":
        raise InputError(
            src, f"not a NIfTI volume or an image (expected {', '.join(NIFTI_EXTS + IMAGE_EXTS)})"
        )
    if kind == "nifti" and _kind(dst) != "nifti":
        raise InputError(dst, "the output of a NIfTI input must be named .nii or .nii.gz")
    if kind == "image" and dst.suffix.lower() != ".png":
        raise InputError(dst, "the output of an image input is a PNG; name it .png")
    if dst.exists() and dst.resolve() == src.resolve():
        raise InputError(dst, "output would overwrite the input; choose another name")
    if batch_size < 1:
        raise InputError("--batch-size", f"must be at least 1, got {batch_size}")
    dev = resolve_device(device)
    model = load_sr_model(checkpoint)
    if kind == "nifti":
        return upscale_volume(model, src, dst, dev, batch_size)
    return upscale_image(model, src, dst, dev, batch_size)
