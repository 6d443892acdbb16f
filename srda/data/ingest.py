"""Ingest of real data: 3D NIfTI volumes (ADNI downloads, BIDS) and 2D class folders.

Two entry pairs, both streamed (discovery is cheap; voxel/pixel data is read one unit at a time):

- ``find_volumes`` walks a folder of ``.nii``/``.nii.gz`` files, gives each file its subject and
  label from a labels table, and checks every header; ``load_volume`` reads one volume,
  reoriented to the closest canonical (RAS+) orientation.
- ``find_images`` reads the Kaggle / Heywhale class-folder layout (``{class}/*`` or
  ``{train,test}/{class}/*``); ``load_image`` reads one image as grayscale in [0, 1].

Labels are taken from tables only, never guessed from path substrings (the released SRDA code
labelled a scan AD when its path contained "AD"); ``srda.data.labels`` reads the tables. Every
bad input raises ``InputError`` naming the file and what is wrong with it.
"""

from __future__ import annotations

import logging
import os
import re
import struct
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from nibabel.filebasedimages import ImageFileError
from nibabel.orientations import apply_orientation, inv_ornt_aff, io_orientation
from nibabel.spatialimages import HeaderDataError
from PIL import Image
from tqdm import tqdm

from srda.data.labels import (
    ADNI_IMAGE_ID,
    SUBJECT_COLUMNS,
    Labeller,
    LabelTable,
    find_column,
    read_table,
)
from srda.data.split import SplitError, check_cohort
from srda.errors import InputError, describe

log = logging.getLogger(__name__)

DEFAULT_CLASSES: tuple[str, ...] = ("CN", "MCI", "AD")

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
# Errors PIL raises for unreadable or truncated images (UnidentifiedImageError is an OSError).
_IMAGE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
    zlib.error,
    MemoryError,
    Image.DecompressionBombError,
)

_NIFTI_RE = re.compile(r"\.nii(\.gz)?$", re.IGNORECASE)
_ADNI_ID_END = re.compile(r"_(I\d+)$", re.IGNORECASE)  # ..._S13408_I13722.nii
_ADNI_ID_ANY = re.compile(r"(?:^|[_.\-])(I\d+)(?=$|[_.\-])", re.IGNORECASE)  # masks: anywhere
_ADNI_PTID = re.compile(r"\d{3}_S_\d{4}", re.IGNORECASE)
_TOKEN = re.compile(r"[^_.\-]+")  # subject IDs are matched on _ - . boundaries

# Column names are compared after lower-casing and dropping spaces, "_" and "-".
_FILE_COLS = ("image", "imagename", "file", "filename", "filepath", "path", "imageid", "name")
_PATIENT_COLS = SUBJECT_COLUMNS + ("patient", "patientid")

_BIDS_SUFFIXES = {"mri": ("_t1w",), "pet": ("_pet",), None: ("_t1w", "_pet")}
_BIDS_SKIP = ("derivatives", "sourcedata", "code")

_IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}
_SPLIT_NAMES = {
    "train": "train",
    "training": "train",
    "test": "test",
    "testing": "test",
    "val": "val",
    "valid": "val",
    "validation": "val",
}
NO_SPLIT = "none"  # source_split of images from a layout without a train/test level
# Known class-name families, mildest first: classes of one family are ordered by severity.
_SEVERITY: tuple[tuple[str, ...], ...] = (
    ("NonDemented", "VeryMildDemented", "MildDemented", "ModerateDemented"),
    ("NoImpairment", "VeryMildImpairment", "MildImpairment", "ModerateImpairment"),
    ("CN", "SMC", "EMCI", "MCI", "LMCI", "AD"),
)


@dataclass(frozen=True)
class VolumeRef:
    """One 3D volume on disk with its subject and label; no voxel data."""

    subject: str
    image_id: str
    label: str
    path: Path
    mask_path: Path | None


@dataclass(frozen=True)
class ImageRef:
    """One 2D image on disk with its subject, label and the split its folder came from."""

    subject: str
    image_id: str
    label: str
    path: Path
    mask_path: Path | None
    source_split: str


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
# small helpers


def _require_dir(path: str | os.PathLike[str], what: str) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise InputError(p, f"{what} does not exist")
    if not p.is_dir():
        raise InputError(p, f"{what} is not a folder")
    return p


def _require_file(path: str | os.PathLike[str], what: str) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise InputError(p, f"{what} does not exist")
    if not p.is_file():
        raise InputError(p, f"{what} is not a file")
    return p


def _nifti_stem(name: str) -> str:
    return _NIFTI_RE.sub("", name)


def _hidden_dir(name: str) -> bool:
    # "__MACOSX" is the resource-fork folder macOS zips carry alongside the real data
    return name.startswith(".") or name == "__MACOSX"


def _walk(root: Path, keep: re.Pattern[str] | set[str], skip: Iterable[Path] = ()) -> list[Path]:
    """Files under ``root`` (symlinks followed, hidden entries and ``skip`` folders left out)."""
    skipped = {p.resolve() for p in skip}
    seen: set[Path] = set()  # resolved folders, so that a symlink loop ends
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        here = Path(dirpath)
        real = here.resolve()
        if real in seen or real in skipped:
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = sorted(d for d in dirnames if not _hidden_dir(d))
        for name in filenames:
            if name.startswith("."):  # macOS "._x.nii" resource forks, editor files
                continue
            ok = (
                keep.search(name)
                if isinstance(keep, re.Pattern)
                else (Path(name).suffix.lower() in keep)
            )
            if ok:
                found.append(here / name)
    return sorted(found)


def _unique_ids(ids: Sequence[str], rels: Sequence[Path]) -> list[str]:
    """Keep each id; ids shared by several files become their relative path (without the
    extension, or with it when that is still not unique, e.g. ``a.nii`` next to ``a.nii.gz``)."""

    def clashes(values: Sequence[str]) -> set[str]:
        seen: dict[str, int] = defaultdict(int)
        for v in values:
            seen[v.lower()] += 1
        return {v for v, n in seen.items() if n > 1}

    dup = clashes(ids)
    out = []
    for i, rel in zip(ids, rels, strict=True):
        if i.lower() in dup:
            name = _nifti_stem(rel.name) if _NIFTI_RE.search(rel.name) else rel.stem
            i = (rel.parent / name).as_posix()
        out.append(i)
    dup = clashes(out)
    return [rel.as_posix() if i.lower() in dup else i for i, rel in zip(out, rels, strict=True)]


# --------------------------------------------------------------------------------------------
# tables


class _SubjectMatcher:
    """Find which of a set of subject IDs a file belongs to, from its relative path.

    A subject matches when it equals a whole folder name or the file stem (BIDS IDs also
    with the ``sub-`` prefix), else when the file name contains it between ``_ - .``
    boundaries. Substrings inside words never match.
    """

    def __init__(self, subjects: Iterable[str]) -> None:
        self.exact: dict[str, set[str]] = defaultdict(set)
        self.alias: dict[str, set[str]] = defaultdict(set)
        for s in subjects:
            self.exact[s.lower()].add(s)
            if not s.lower().startswith("sub-"):
                self.alias["sub-" + s.lower()].add(s)

    def _lookup(self, key: str) -> set[str]:
        key = key.lower()
        return self.exact.get(key) or self.alias.get(key) or set()

    def match(self, rel: Path) -> list[str]:
        """Matching subjects, best first; more than one means the file is ambiguous."""
        stem = _nifti_stem(rel.name) if _NIFTI_RE.search(rel.name) else rel.stem
        hits: set[str] = set()
        for part in (*rel.parts[:-1], stem):
            hits |= self._lookup(part)
        if hits:
            return sorted(hits)
        spans: dict[str, int] = {}
        tokens = [(m.start(), m.end()) for m in _TOKEN.finditer(stem)]
        for i, (start, _) in enumerate(tokens):
            for _, end in tokens[i:]:
                for s in self._lookup(stem[start:end]):
                    spans[s] = max(spans.get(s, 0), end - start)
        if not spans:
            return []
        longest = max(spans.values())  # "sub-01" beats "01" when both are listed
        return sorted(s for s, n in spans.items() if n == longest)


def _guess_subject(rel: Path) -> str:
    """A readable subject name for error messages only (never used as a label source)."""
    for part in rel.parts[:-1]:
        if part.lower().startswith("sub-"):
            return part
    m = _ADNI_PTID.search(rel.as_posix())
    if m:
        return m.group(0)
    return rel.parts[0] if len(rel.parts) > 1 else _nifti_stem(rel.name)


def _adni_image_id(rel: Path) -> str | None:
    m = _ADNI_ID_END.search(_nifti_stem(rel.name))
    if m:
        return m.group(1).upper()
    for part in reversed(rel.parts[:-1]):
        if ADNI_IMAGE_ID.match(part):
            return part.upper()
    return None


# --------------------------------------------------------------------------------------------
# NIfTI headers and data


def _open_nifti(path: Path, what: str) -> nib.Nifti1Image:
    try:
        img = nib.load(str(path))
    except _NIFTI_ERRORS as exc:
        raise InputError(path, f"cannot read {what} as NIfTI ({describe(exc)})") from exc
    if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)):
        raise InputError(path, f"{what} is not a NIfTI image ({type(img).__name__})")
    return img


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
    affine = img.affine
    if (
        affine is None
        or not np.all(np.isfinite(affine))
        or abs(np.linalg.det(affine[:3, :3])) < 1e-12
    ):
        raise InputError(path, f"{what} has no usable affine (voxel-to-world matrix): {affine}")
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
# 3D volumes


def find_volumes(
    path: str | os.PathLike[str],
    labels: str | os.PathLike[str] | None = None,
    masks: str | os.PathLike[str] | None = None,
    classes: Sequence[str] = DEFAULT_CLASSES,
    label_map: Mapping[str, str] | None = None,
    label_column: str | None = None,
    modality: str | None = None,
) -> list[VolumeRef]:
    """List the NIfTI volumes under ``path`` with subject and label; no voxel data is read.

    Headers are checked (shape, frames, affine, truncation of uncompressed files), so most bad
    inputs fail here. ``modality`` (``mri`` / ``pet``) picks ``*_T1w`` or ``*_pet`` files in
    a BIDS dataset; ADNI-style trees take every NIfTI file.
    """
    root = _require_dir(path, "dataset folder")
    if modality not in _BIDS_SUFFIXES:
        raise InputError("modality", f"unknown modality {modality!r}; expected mri or pet")
    # BIDS: a described dataset, or sub-XX folders at the top (then the suffix filter is
    # applied only if some file carries a BIDS suffix).
    described = (root / "participants.tsv").is_file() or (
        root / "dataset_description.json"
    ).is_file()
    bids = described or any(c.name.startswith("sub-") and c.is_dir() for c in root.iterdir())
    masks_dir = _require_dir(masks, "masks folder") if masks is not None else None
    skip = [root / d for d in _BIDS_SKIP] if bids else []
    if masks_dir is not None:
        skip.append(masks_dir)  # a masks folder inside the dataset holds no images
    files = _walk(root, _NIFTI_RE, skip)
    if not files:
        raise InputError(root, "no NIfTI files (.nii or .nii.gz) found")
    if bids:
        suffixes = _BIDS_SUFFIXES[modality]
        kept = [f for f in files if _nifti_stem(f.name).lower().endswith(suffixes)]
        if not kept and described:
            raise InputError(
                root,
                f"no BIDS {'/'.join(s[1:] for s in suffixes)} images among {len(files)} "
                "NIfTI files (expected sub-XX/[ses-YY/]anat/*_T1w.nii.gz or pet/*_pet.nii.gz)",
            )
        if kept:
            files = kept
        else:
            log.info("%s: no BIDS-suffixed files; taking every NIfTI file", root)

    if labels is None:
        tsv = root / "participants.tsv"
        if not tsv.is_file():
            raise InputError(root, "no labels CSV given and no participants.tsv in this folder")
        labels_path = tsv
    else:
        labels_path = _require_file(labels, "labels CSV")
    table = LabelTable(labels_path, label_column)
    to_class = Labeller(labels_path, classes, label_map)
    matcher = _SubjectMatcher(table.subjects)

    subjects, raw_ids, rels, labels_out, canon_shapes = [], [], [], [], []
    for f in tqdm(files, desc="checking volumes", unit="file", disable=None):
        rel = f.relative_to(root)
        adni_id = _adni_image_id(rel)
        hit = table.by_image.get(adni_id) if adni_id else None
        if hit is not None:
            subject, label = hit[0], to_class(hit[1], hit[0], f)
        else:
            subject = _match_subject(matcher, rel, f, labels_path)
            label = _subject_label(table, to_class, subject, f)
        img = _open_nifti(f, "volume")
        shape = _check_header(f, img, "volume")
        subjects.append(subject)
        raw_ids.append(adni_id or _nifti_stem(f.name))
        rels.append(rel)
        labels_out.append(label)
        canon_shapes.append(_canonical_shape(img, shape))
    image_ids = _unique_ids(raw_ids, rels)

    mask_paths: list[Path | None] = [None] * len(files)
    if masks_dir is not None:
        mask_paths = list(_match_volume_masks(masks_dir, files, rels, image_ids, subjects))
        for f, m, cshape in zip(files, mask_paths, canon_shapes, strict=True):
            mimg = _open_nifti(m, "mask")
            mshape = _canonical_shape(mimg, _check_header(m, mimg, "mask"))
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
    _log_summary(root, refs, to_class.classes, set(table.subjects), labels_path)
    return refs


def _match_subject(matcher: _SubjectMatcher, rel: Path, f: Path, labels_path: Path) -> str:
    found = matcher.match(rel)
    if not found:
        raise InputError(
            labels_path, f"labels CSV misses subject {_guess_subject(rel)} (image {f})"
        )
    if len(found) > 1:
        raise InputError(f, f"path matches several subjects of {labels_path}: {', '.join(found)}")
    return found[0]


def _subject_label(table: LabelTable, to_class: Labeller, subject: str, f: Path) -> str:
    raws = table.by_subject.get(subject)
    if not raws:
        raise InputError(table.path, f"labels CSV has no label for subject {subject} (image {f})")
    found = sorted({to_class(r, subject, f) for r in raws})
    if len(found) > 1:
        raise InputError(
            table.path,
            f"subject {subject} has conflicting labels {', '.join(found)} (image {f}); give one "
            "label per subject, or an 'Image Data ID' column to label each image",
        )
    return found[0]


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
    mask_files = _walk(masks_dir, _NIFTI_RE)
    if not mask_files:
        raise InputError(masks_dir, "no NIfTI masks (.nii or .nii.gz) found")
    by_rel: dict[str, list[Path]] = defaultdict(list)
    by_id: dict[str, list[Path]] = defaultdict(list)
    by_prefix: dict[str, list[Path]] = defaultdict(list)
    by_bids: dict[tuple[str, ...], list[Path]] = defaultdict(list)
    for m in mask_files:
        mrel = m.relative_to(masks_dir)
        stem = _nifti_stem(m.name)
        by_rel[(mrel.parent / stem).as_posix().lower()].append(m)
        if _bids_entities(stem):
            by_bids[_bids_entities(stem)].append(m)
        for found in {x.upper() for x in _ADNI_ID_ANY.findall(stem)}:
            by_id[found].append(m)
        for t in _TOKEN.finditer(stem):  # every prefix ending on a token boundary
            by_prefix[stem[: t.end()].lower()].append(m)
    per_subject_images: dict[str, int] = defaultdict(int)
    for s in subjects:
        per_subject_images[s] += 1
    sub_matcher = _SubjectMatcher(set(subjects))
    by_subject: dict[str, list[Path]] = defaultdict(list)
    for m in mask_files:
        found = sub_matcher.match(m.relative_to(masks_dir))
        if len(found) == 1:
            by_subject[found[0]].append(m)

    used: dict[Path, Path] = {}
    for f, rel, image_id, subject in zip(files, rels, image_ids, subjects, strict=True):
        stem = _nifti_stem(f.name).lower()
        rules = [
            by_rel.get((rel.parent / _nifti_stem(rel.name)).as_posix().lower(), []),
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


def _log_summary(
    root: Path,
    refs: Sequence[VolumeRef | ImageRef],
    classes: Sequence[str],
    table_subjects: set[str] | None,
    table_path: Path | None,
) -> None:
    counts = {c: sum(r.label == c for r in refs) for c in classes}
    n_subjects = len({r.subject for r in refs})
    log.info(
        "%s: %d images of %d subjects (%s)",
        root,
        len(refs),
        n_subjects,
        ", ".join(f"{c} {n}" for c, n in counts.items()),
    )
    empty = [c for c, n in counts.items() if n == 0]
    if empty:
        log.warning("%s: no images of class %s", root, ", ".join(empty))
    if table_subjects is not None:
        missing = sorted(table_subjects - {r.subject for r in refs})
        if missing:
            shown = ", ".join(missing[:10]) + (", ..." if len(missing) > 10 else "")
            log.warning(
                "%s: %d subjects have no volume under %s: %s",
                table_path,
                len(missing),
                root,
                shown,
            )


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


# --------------------------------------------------------------------------------------------
# 2D class folders


def _class_key(name: str) -> str:
    return re.sub(r"[^0-9a-z]+", "", name.lower())


_KNOWN_CLASSES = {_class_key(c): c for family in _SEVERITY for c in family}


def _order_classes(keys: Iterable[str], names: Mapping[str, str]) -> list[str]:
    keys = list(keys)
    for family in _SEVERITY:
        rank = {_class_key(c): i for i, c in enumerate(family)}
        if all(k in rank for k in keys):
            return [names[k] for k in sorted(keys, key=rank.__getitem__)]
    return sorted((names[k] for k in keys), key=lambda n: (n.lower(), n))


def _subdirs(folder: Path, skip: set[Path]) -> list[Path]:
    return sorted(
        c
        for c in folder.iterdir()
        if c.is_dir() and not _hidden_dir(c.name) and c.resolve() not in skip
    )


@dataclass(frozen=True)
class _ClassFolders:
    """A class-folder dataset as listed, before any image is opened."""

    root: Path
    entries: list[tuple[str, str, Path]]  # (source split, class key, file)
    names: dict[str, str]  # class key -> class name
    class_names: list[str]  # mildest first


def _list_class_folders(root: Path, skip: set[Path]) -> _ClassFolders:
    """The class folders under ``root`` and their image files (names only, nothing opened)."""

    # An unzipped download often wraps the data in one extra folder: step into it.
    def has_images(folder: Path) -> bool:
        return any(c.is_file() and c.suffix.lower() in _IMAGE_EXTS for c in folder.iterdir())

    while True:
        children = _subdirs(root, skip)
        if (
            len(children) == 1
            and children[0].name.lower() not in _SPLIT_NAMES
            and not has_images(root)
            and not has_images(children[0])  # then it is a (lone) class folder
        ):
            log.info("%s: one sub-folder only, looking inside %s", root, children[0].name)
            root = children[0]
            continue
        break
    splits = [c for c in children if c.name.lower() in _SPLIT_NAMES]
    if splits and len(splits) != len(children):
        others = ", ".join(c.name for c in children if c not in splits)
        raise InputError(
            root,
            f"mixes split folders ({', '.join(c.name for c in splits)}) with other folders "
            f"({others}); expected {{class}}/ or {{train,test}}/{{class}}/ sub-folders",
        )
    class_dirs: list[tuple[str, Path]] = []
    if splits:
        for s in splits:
            sub = _subdirs(s, skip)
            if not sub:
                raise InputError(s, "split folder has no class folders")
            class_dirs += [(_SPLIT_NAMES[s.name.lower()], c) for c in sub]
    else:
        class_dirs = [(NO_SPLIT, c) for c in children]
    if not class_dirs:
        raise InputError(
            root,
            "no class folders found; expected path/{class}/*.png|jpg or "
            "path/{train,test}/{class}/*.png|jpg",
        )

    names: dict[str, str] = {}
    entries: list[tuple[str, str, Path]] = []
    for split, cdir in class_dirs:
        key = _class_key(cdir.name) or cdir.name
        names.setdefault(key, _KNOWN_CLASSES.get(key, cdir.name))
        files = _walk(cdir, _IMAGE_EXTS)
        if not files:
            raise InputError(cdir, "class folder has no images (.png, .jpg, .jpeg, .bmp, .tif)")
        entries += [(split, key, f) for f in files]
    if len(names) < 2:
        raise InputError(
            root, f"found only one class folder ({next(iter(names.values()))}); need two or more"
        )
    if splits:
        for key, name in names.items():
            missing = sorted({s for s, _ in class_dirs} - {s for s, k, _ in entries if k == key})
            if missing:
                log.warning(
                    "%s: class %s has no folder in split %s", root, name, ", ".join(missing)
                )
    return _ClassFolders(root, entries, names, _order_classes(names, names))


def class_folder_counts(
    path: str | os.PathLike[str],
    masks: str | os.PathLike[str] | None = None,
    subjects: str | os.PathLike[str] | None = None,
    unit: str = "subjects",
) -> dict[str, int]:
    """Class name -> number of subjects (``unit="subjects"``) or images (``"slices"``) of a
    class-folder dataset, mildest first, from file names alone: the check made when the
    workflow starts. Without a subjects CSV every image is its own subject."""
    root = _require_dir(path, "image folder")
    skip = {_require_dir(masks, "masks folder").resolve()} if masks is not None else set()
    listing = _list_class_folders(root, skip)
    subject_of = _read_subjects(Path(subjects), listing.root) if subjects is not None else None
    units: dict[str, set[object]] = {name: set() for name in listing.class_names}
    for _, key, f in listing.entries:
        unit_id: object = f
        if unit == "subjects" and subject_of is not None:
            unit_id = subject_of(f.relative_to(listing.root))
        units[listing.names[key]].add(unit_id)
    return {name: len(found) for name, found in units.items()}


def check_class_folders(settings: Mapping[str, Any]) -> None:
    """Refuse, when the workflow starts, a 2D class-folder dataset the split cannot serve
    (a class with fewer subjects than the split needs, or an empty split), naming the folder
    (or the subjects CSV that groups the images) and the counts. Only names are read."""
    if settings["source"] != "folders":
        return
    mode = str(settings["split"])
    subjects = settings.get("subjects")
    counts = class_folder_counts(
        settings["path"], masks=settings.get("masks") or None, subjects=subjects or None, unit=mode
    )
    try:
        check_cohort(counts, mode, settings["split_fractions"])
    except SplitError as exc:
        where = subjects if subjects and mode == "subjects" else settings["path"]
        name = settings["name"]
        raise InputError(where, f"dataset {name}: {exc} (images in the class folders)") from None


def find_images(
    path: str | os.PathLike[str],
    masks: str | os.PathLike[str] | None = None,
    subjects: str | os.PathLike[str] | None = None,
) -> tuple[list[ImageRef], list[str]]:
    """List the images of a class-folder dataset and its class names, mildest first.

    Layouts: ``path/{class}/*`` or ``path/{train,test,val}/{class}/*`` (splits are merged and
    recorded in ``source_split``). Known Alzheimer class names (NonDemented ... ModerateDemented
    in any spelling) are ordered by severity and given one canonical spelling; others are
    ordered alphabetically. Only image headers are read.
    """
    root = _require_dir(path, "image folder")
    masks_dir = _require_dir(masks, "masks folder") if masks is not None else None
    skip = {masks_dir.resolve()} if masks_dir is not None else set()
    listing = _list_class_folders(root, skip)
    root, entries, names = listing.root, listing.entries, listing.names

    rels = [f.relative_to(root) for _, _, f in entries]
    sizes = [_image_size(f) for _, _, f in tqdm(entries, desc="checking images", disable=None)]
    image_ids = _unique_ids([f.stem for _, _, f in entries], rels)
    subject_of = _read_subjects(Path(subjects), root) if subjects is not None else None
    mask_of = _ImageMasks(masks_dir) if masks_dir is not None else None

    refs = []
    for (split, key, f), rel, iid, size in zip(entries, rels, image_ids, sizes, strict=True):
        subject = subject_of(rel) if subject_of is not None else iid
        mask_path = None
        if mask_of is not None:
            mask_path = mask_of(f, rel)
            msize = _image_size(mask_path)
            if msize != size:
                raise InputError(
                    mask_path,
                    f"mask size {msize[0]}x{msize[1]} does not match image size "
                    f"{size[0]}x{size[1]} of {f}",
                )
        refs.append(
            ImageRef(
                subject=subject,
                image_id=iid,
                label=names[key],
                path=f,
                mask_path=mask_path,
                source_split=split,
            )
        )
    if mask_of is not None:
        mask_of.report_unused()
    refs.sort(key=lambda r: (r.subject, r.image_id))
    _log_summary(root, refs, listing.class_names, None, None)
    return refs, listing.class_names


def _image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the header; rejects unreadable and degenerate images."""
    try:
        with Image.open(path) as im:
            w, h = im.size
    except _IMAGE_ERRORS as exc:
        raise InputError(path, f"cannot read image ({describe(exc)})") from exc
    if w < 2 or h < 2:
        raise InputError(path, f"image is {w}x{h} pixels; need at least 2x2")
    return w, h


def _read_subjects(path: Path, root: Path) -> Callable[[Path], str]:
    """Image -> subject from a CSV keyed by file name, stem or path relative to the dataset."""
    path = _require_file(path, "subjects CSV")
    header, rows = read_table(path, "subjects CSV")
    file_col = find_column(header, _FILE_COLS)
    subj_col = find_column(header, _PATIENT_COLS)
    if file_col is None or subj_col is None:
        raise InputError(
            path,
            "needs an image column (image, file, filename, path) and a subject column "
            f"(subject, participant_id, patient); columns are {', '.join(header)}",
        )
    table: dict[str, str] = {}
    for row in rows:
        key = row[file_col].replace("\\", "/").strip("/").lower()
        subject = row[subj_col]
        if not key or not subject:
            continue
        if table.get(key, subject) != subject:
            raise InputError(path, f"image {row[file_col]} is listed with two subjects")
        table[key] = subject

    def lookup(rel: Path) -> str:
        no_ext = rel.parent / rel.stem
        for key in (rel.as_posix(), no_ext.as_posix(), rel.name, rel.stem):
            if key.lower() in table:
                return table[key.lower()]
        raise InputError(path, f"subjects CSV misses image {rel.as_posix()} (under {root})")

    return lookup


class _ImageMasks:
    """Label PNGs for 2D images: same relative path, else same stem (maybe with a suffix)."""

    def __init__(self, masks_dir: Path) -> None:
        self.dir = masks_dir
        self.files = _walk(masks_dir, _IMAGE_EXTS)
        if not self.files:
            raise InputError(masks_dir, "no mask images found")
        self.by_rel: dict[str, list[Path]] = defaultdict(list)
        self.by_prefix: dict[str, list[Path]] = defaultdict(list)
        for m in self.files:
            mrel = m.relative_to(masks_dir)
            self.by_rel[(mrel.parent / mrel.stem).as_posix().lower()].append(m)
            for t in _TOKEN.finditer(m.stem):
                self.by_prefix[m.stem[: t.end()].lower()].append(m)
        self.used: set[Path] = set()

    def __call__(self, f: Path, rel: Path) -> Path:
        for cands in (
            self.by_rel.get((rel.parent / rel.stem).as_posix().lower(), []),
            self.by_prefix.get(f.stem.lower(), []),
        ):
            if len(cands) == 1:
                self.used.add(cands[0])
                return cands[0]
            if len(cands) > 1:
                names = ", ".join(str(c.relative_to(self.dir)) for c in cands)
                raise InputError(self.dir, f"several masks match image {f}: {names}")
        raise InputError(self.dir, f"no mask for image {f}")

    def report_unused(self) -> None:
        unused = len(self.files) - len(self.used)
        if unused:
            log.warning("%s: %d masks match no image", self.dir, unused)


def load_image(ref: ImageRef) -> tuple[np.ndarray, np.ndarray | None]:
    """Read one image as float32 grayscale in [0, 1] (H, W), and its int16 mask if any.

    8-bit images are divided by 255, 16-bit by 65535. Colour and palette images are converted
    with PIL's ``convert("L")`` (ITU-R 601-2 luma: 0.299 R + 0.587 G + 0.114 B); alpha is
    dropped.
    """
    image = _read_gray(ref.path)
    mask = None
    if ref.mask_path is not None:
        mask = _read_label_image(ref.mask_path)
        if mask.shape != image.shape:
            raise InputError(
                ref.mask_path,
                f"mask shape {mask.shape} does not match image shape {image.shape} of {ref.path}",
            )
    return image, mask


def _read_gray(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            if mode.startswith("I;16"):
                arr = np.asarray(im).astype(np.float32) / 65535.0
            elif mode == "I":  # 16-bit PNGs may open as 32-bit "I"
                raw = np.asarray(im)
                if raw.size and (raw.min() < 0 or raw.max() > 65535):
                    raise InputError(path, "32-bit integer image outside 0..65535")
                arr = raw.astype(np.float32) / 65535.0
            elif mode == "F":
                arr = np.asarray(im, dtype=np.float32)
                if arr.size and not (np.isfinite(arr).all() and arr.min() >= 0 and arr.max() <= 1):
                    raise InputError(path, "float image with values outside [0, 1]")
            elif mode == "L":
                arr = np.asarray(im).astype(np.float32) / 255.0
            else:
                arr = np.asarray(im.convert("L")).astype(np.float32) / 255.0
    except _IMAGE_ERRORS as exc:
        raise InputError(path, f"cannot read image ({describe(exc)})") from exc
    if arr.ndim != 2 or min(arr.shape) < 2:
        raise InputError(path, f"image of shape {arr.shape}; need a 2D image of at least 2x2")
    return np.ascontiguousarray(arr, dtype=np.float32)


def _read_label_image(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode not in ("1", "L", "P", "I", "I;16", "I;16B", "I;16L"):
                raise InputError(
                    path, f"mask has mode {im.mode}; expected a single-channel label image"
                )
            raw = np.asarray(im)  # palette images give their indices, which are the labels
    except _IMAGE_ERRORS as exc:
        raise InputError(path, f"cannot read mask ({describe(exc)})") from exc
    if raw.size and (raw.min() < -32768 or raw.max() > 32767):
        raise InputError(path, "mask labels do not fit in int16")
    return raw.astype(np.int16)
