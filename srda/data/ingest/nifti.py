"""3D NIfTI volumes: ``find_volumes`` lists them with subject and label and checks every header;
``load_volume`` reads one, reoriented to the closest canonical (RAS+) orientation.

Which files make up a dataset is its layout's business (``srda.data.ingest.layouts``: BIDS, or
any tree such as an ADNI download); labels, masks and checks are the same for all of them.
"""

from __future__ import annotations

import logging
import os
import struct
import zlib
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.filebasedimages import ImageFileError
from nibabel.orientations import apply_orientation, inv_ornt_aff, io_orientation
from nibabel.spatialimages import HeaderDataError
from tqdm import tqdm

from srda.data.ingest import layouts
from srda.data.ingest.files import (
    NIFTI_RE,
    TOKEN,
    log_summary,
    nifti_stem,
    require,
    unique_ids,
    walk,
)
from srda.data.ingest.tables import ADNI_ID_ANY, SubjectMatcher, VolumeLabels
from srda.data.labels import ADNI_IMAGE_ID, Labeller, LabelTable
from srda.errors import InputError, describe

log = logging.getLogger(__name__)

DEFAULT_CLASSES: tuple[str, ...] = ("CN", "MCI", "AD")
_MODALITIES = (None, "mri", "pet")

# Errors nibabel (and the gzip/zlib/mmap layers under it) raise for damaged files, some only
# when the voxel data is read lazily.
_NIFTI_ERRORS = (
    ImageFileError,
    HeaderDataError,
    EOFError,
    zlib.error,
    OSError,
    ValueError,
    struct.error,
    MemoryError,
    IndexError,
    TypeError,
)


@dataclass(frozen=True)
class VolumeRef:
    """One 3D volume on disk with its subject and label; no voxel data."""

    subject: str
    image_id: str
    label: str
    path: Path
    mask_path: Path | None


@dataclass
class Volume:
    """A loaded volume: float32 voxels in canonical RAS+ orientation.

    Axis 0 runs left -> right (sagittal slices), axis 1 posterior -> anterior (coronal),
    axis 2 inferior -> superior (axial). ``affine`` maps these indices to the file's world space.
    """

    ref: VolumeRef
    data: np.ndarray
    affine: np.ndarray
    zooms: tuple[float, float, float]
    mask: np.ndarray | None


# --------------------------------------------------------------------------------------------
# headers and voxels


def _open_nifti(path: Path, what: str) -> nib.Nifti1Image:
    try:
        img = nib.load(str(path))
    except _NIFTI_ERRORS as exc:
        raise InputError(path, f"cannot read {what} as NIfTI ({describe(exc)})") from exc
    if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)):
        raise InputError(path, f"{what} is not a NIfTI image ({type(img).__name__})")
    return img


def usable_affine(affine: np.ndarray | None) -> bool:
    """A finite, invertible voxel-to-world matrix (nibabel gives None for a header without)."""
    if affine is None or not np.all(np.isfinite(affine)):
        return False
    return bool(abs(np.linalg.det(affine[:3, :3])) >= 1e-12)


def _check_header(path: Path, img: nib.Nifti1Image, what: str) -> tuple[int, int, int]:
    """Validate shape, affine and (uncompressed) file size; return the on-disk 3D shape."""
    shape = tuple(int(s) for s in img.shape)
    if len(shape) > 3:
        frames = int(np.prod(shape[3:]))
        if frames > 1:
            raise InputError(
                path, f"{len(shape)}D {what} with {frames} frames; give one frame per file"
            )
    if len(shape) < 3:
        raise InputError(path, f"{len(shape)}D image of shape {shape}; expected a 3D {what}")
    spatial = shape[:3]
    if min(spatial) < 1:
        raise InputError(path, f"empty {what} (shape {shape})")
    if min(spatial) == 1:
        raise InputError(
            path, f"{what} of shape {shape} is a single slice (2D); expected a 3D {what}"
        )
    if not usable_affine(img.affine):
        raise InputError(path, f"{what} has no usable affine (voxel-to-world matrix): {img.affine}")
    if not path.name.lower().endswith(".gz"):  # uncompressed: a cheap truncation check
        try:
            itemsize = np.dtype(img.get_data_dtype()).itemsize
            need = int(getattr(img.dataobj, "offset", 0)) + int(np.prod(shape)) * itemsize
            have = path.stat().st_size
        except (OSError, TypeError, ValueError) as exc:
            raise InputError(path, f"cannot read {what} header ({describe(exc)})") from exc
        if have < need:
            raise InputError(path, f"{what} is truncated: {have} bytes, the header needs {need}")
    return spatial  # type: ignore[return-value]


def _canonical_shape(img: nib.Nifti1Image, shape: Sequence[int]) -> tuple[int, int, int]:
    ornt = io_orientation(img.affine)
    out = [0, 0, 0]
    for axis, (dest, _) in enumerate(ornt):
        out[int(dest)] = int(shape[axis])
    return tuple(out)  # type: ignore[return-value]


def _checked_shape(path: Path, what: str) -> tuple[int, int, int]:
    """The RAS+ shape of a file whose header passes the checks (no voxel data read)."""
    img = _open_nifti(path, what)
    return _canonical_shape(img, _check_header(path, img, what))


def _read_canonical(path: Path, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Voxels (float32, scaled by scl_slope/inter) and affine, in closest-canonical RAS+."""
    img = _open_nifti(path, what)
    shape = _check_header(path, img, what)
    try:
        data = img.get_fdata(dtype=np.float32)  # applies scl_slope / scl_inter
    except _NIFTI_ERRORS as exc:
        raise InputError(
            path,
            f"cannot read the voxel data of this {what}; the file is truncated or "
            f"corrupt ({describe(exc)})",
        ) from exc
    data = data.reshape(shape)  # drops singleton 4th+ axes (checked in _check_header)
    ornt = io_orientation(img.affine)
    data = np.ascontiguousarray(apply_orientation(data, ornt), dtype=np.float32)
    affine = img.affine @ inv_ornt_aff(ornt, shape)
    return data, affine


def _zooms(affine: np.ndarray) -> tuple[float, float, float]:
    z = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    return (float(z[0]), float(z[1]), float(z[2]))


def _to_mask(data: np.ndarray, path: Path) -> np.ndarray:
    if not np.all(np.isfinite(data)):
        raise InputError(path, "mask contains NaN or infinite voxels")
    rounded = np.rint(data)
    if np.any(np.abs(data - rounded) > 1e-3):
        raise InputError(path, "mask has non-integer values; expected integer ROI labels")
    if rounded.size and (rounded.min() < -32768 or rounded.max() > 32767):
        raise InputError(path, "mask labels do not fit in int16")
    return rounded.astype(np.int16)


# --------------------------------------------------------------------------------------------
# discovery


def find_volumes(
    path: str | os.PathLike[str],
    labels: str | os.PathLike[str] | None = None,
    masks: str | os.PathLike[str] | None = None,
    classes: Sequence[str] = DEFAULT_CLASSES,
    label_map: Mapping[str, str] | None = None,
    label_column: str | None = None,
    modality: str | None = None,
    layout: str | None = None,
) -> list[VolumeRef]:
    """List the NIfTI volumes under ``path`` with subject and label; no voxel data is read.

    Headers are checked (shape, frames, affine, truncation of uncompressed files), so most bad
    inputs fail here. ``modality`` (``mri`` / ``pet``) picks ``*_T1w`` or ``*_pet`` files in
    a BIDS dataset; ADNI-style trees take every NIfTI file. ``layout`` names a registered
    layout instead of recognising it from the folder.
    """
    root = require(path, "dataset folder")
    if modality not in _MODALITIES:
        raise InputError("modality", f"unknown modality {modality!r}; expected mri or pet")
    lay = layouts.pick(root, "volumes", layout)
    masks_dir = require(masks, "masks folder") if masks is not None else None
    # a masks folder inside the dataset holds no images
    found = lay.files(root, [masks_dir] if masks_dir is not None else [], modality)
    files = found.files
    log.debug("%s: %s layout, %d NIfTI files", root, lay.name, len(files))

    if labels is not None:
        labels_path = require(labels, "labels CSV", "file")
    elif found.labels is not None:
        labels_path = found.labels
    else:
        raise InputError(root, "no labels CSV given and no participants.tsv in this folder")
    table = LabelTable(labels_path, label_column)
    to_class = Labeller(labels_path, classes, label_map)
    label_of = VolumeLabels(table, to_class)

    subjects, raw_ids, rels, labels_out, canon_shapes = [], [], [], [], []
    for f in tqdm(files, desc="checking volumes", unit="file", disable=None):
        rel = f.relative_to(root)
        subject, label, adni_id = label_of(rel, f)
        canon_shapes.append(_checked_shape(f, "volume"))
        subjects.append(subject)
        raw_ids.append(adni_id or nifti_stem(f.name))
        rels.append(rel)
        labels_out.append(label)
    image_ids = unique_ids(raw_ids, rels)

    mask_paths: list[Path | None] = [None] * len(files)
    if masks_dir is not None:
        mask_paths = list(_match_volume_masks(masks_dir, files, rels, image_ids, subjects))
        for f, m, cshape in zip(files, mask_paths, canon_shapes, strict=True):
            mshape = _checked_shape(m, "mask")
            if mshape != cshape:
                raise InputError(
                    m,
                    f"mask shape {mshape} does not match image shape {cshape} of {f} "
                    "(both in RAS orientation)",
                )

    refs = [
        VolumeRef(subject=s, image_id=i, label=lab, path=f, mask_path=m)
        for s, i, lab, f, m in zip(subjects, image_ids, labels_out, files, mask_paths, strict=True)
    ]
    refs.sort(key=lambda r: (r.subject, r.image_id))
    log_summary(root, refs, to_class.classes, set(table.subjects), labels_path)
    return refs


def _match_volume_masks(
    masks_dir: Path,
    files: Sequence[Path],
    rels: Sequence[Path],
    image_ids: Sequence[str],
    subjects: Sequence[str],
) -> Iterator[Path]:
    """One mask per volume: same relative path, same ADNI image id, same stem (optionally
    followed by a suffix such as ``_mask``), same BIDS sub/ses/run entities, or the subject's
    only mask for its only image. The first rule that finds anything decides."""
    mask_files = walk(masks_dir, NIFTI_RE)
    if not mask_files:
        raise InputError(masks_dir, "no NIfTI masks (.nii or .nii.gz) found")
    by_rel: dict[str, list[Path]] = defaultdict(list)
    by_id: dict[str, list[Path]] = defaultdict(list)
    by_prefix: dict[str, list[Path]] = defaultdict(list)
    by_bids: dict[tuple[str, ...], list[Path]] = defaultdict(list)
    for m in mask_files:
        mrel = m.relative_to(masks_dir)
        stem = nifti_stem(m.name)
        by_rel[(mrel.parent / stem).as_posix().lower()].append(m)
        if _bids_entities(stem):
            by_bids[_bids_entities(stem)].append(m)
        for found in {x.upper() for x in ADNI_ID_ANY.findall(stem)}:
            by_id[found].append(m)
        for t in TOKEN.finditer(stem):  # every prefix ending on a token boundary
            by_prefix[stem[: t.end()].lower()].append(m)
    per_subject_images: dict[str, int] = defaultdict(int)
    for s in subjects:
        per_subject_images[s] += 1
    sub_matcher = SubjectMatcher(set(subjects))
    by_subject: dict[str, list[Path]] = defaultdict(list)
    for m in mask_files:
        found = sub_matcher.match(m.relative_to(masks_dir))
        if len(found) == 1:
            by_subject[found[0]].append(m)

    used: dict[Path, Path] = {}
    for f, rel, image_id, subject in zip(files, rels, image_ids, subjects, strict=True):
        stem = nifti_stem(f.name).lower()
        rules = [
            by_rel.get((rel.parent / nifti_stem(rel.name)).as_posix().lower(), []),
            by_id.get(image_id.upper(), []) if ADNI_IMAGE_ID.match(image_id) else [],
            by_prefix.get(stem, []),
            by_bids.get(_bids_entities(stem), []) if _bids_entities(stem) else [],
            by_subject.get(subject, []) if per_subject_images[subject] == 1 else [],
        ]
        chosen = None
        for cands in rules:
            if len(cands) == 1:
                chosen = cands[0]
                break
            if len(cands) > 1:
                names = ", ".join(str(c.relative_to(masks_dir)) for c in cands)
                raise InputError(masks_dir, f"several masks match image {f}: {names}")
        if chosen is None:
            raise InputError(masks_dir, f"no mask for image {f} (subject {subject})")
        if chosen in used:
            log.warning("%s: mask %s serves both %s and %s", masks_dir, chosen, used[chosen], f)
        used[chosen] = f
        yield chosen
    unused = len(mask_files) - len(used)
    if unused:
        log.warning("%s: %d masks match no image", masks_dir, unused)


def _bids_entities(stem: str) -> tuple[str, ...]:
    """The sub/ses/run entities of a BIDS file name ("" when absent); () without sub-."""
    found = dict(p.split("-", 1) for p in stem.lower().split("_") if "-" in p)
    if "sub" not in found:
        return ()
    return tuple(found.get(k, "") for k in ("sub", "ses", "run"))


# --------------------------------------------------------------------------------------------
# loading


def load_volume(ref: VolumeRef) -> Volume:
    """Read one volume (and its mask) as float32 in closest-canonical RAS+ orientation."""
    data, affine = _read_canonical(ref.path, "volume")
    n_nan = int(np.isnan(data).sum())
    if n_nan:
        raise InputError(ref.path, f"volume contains {n_nan} NaN voxels")
    n_inf = int(np.isinf(data).sum())
    if n_inf:
        raise InputError(ref.path, f"volume contains {n_inf} infinite voxels")
    mask = None
    if ref.mask_path is not None:
        mdata, maffine = _read_canonical(ref.mask_path, "mask")
        if mdata.shape != data.shape:
            raise InputError(
                ref.mask_path,
                f"mask shape {mdata.shape} does not match image shape {data.shape} of "
                f"{ref.path} (both in RAS orientation)",
            )
        if not np.allclose(maffine, affine, atol=1e-2):
            # Tools often rewrite qform/sform slightly; the grids are the same, so only warn.
            log.warning("%s: mask affine differs from that of %s", ref.mask_path, ref.path)
        mask = _to_mask(mdata, ref.mask_path)
    return Volume(ref=ref, data=data, affine=affine, zooms=_zooms(affine), mask=mask)
