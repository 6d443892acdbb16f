"""2D image datasets: ``find_images`` lists the images with subject and class (``source:
folders``); ``load_image`` reads one as grayscale in [0, 1]. ``class_folder_counts`` and
``check_class_folders`` check such a dataset against the split from file names alone, when the
workflow starts.

Which files make up a dataset and what class each has is its layout's business
(``srda.data.ingest.layouts``: the Kaggle / Heywhale class folders); subjects, masks and checks
are the same for every layout.
"""

from __future__ import annotations

import logging
import os
import struct
import zlib
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm import tqdm

from srda.data.ingest import layouts
from srda.data.ingest.files import IMAGE_EXTS, TOKEN, log_summary, require, unique_ids, walk
from srda.data.ingest.layouts import ImageListing
from srda.data.ingest.tables import read_subjects
from srda.data.split import SplitError, check_cohort
from srda.errors import InputError, describe

log = logging.getLogger(__name__)

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


@dataclass(frozen=True)
class ImageRef:
    """One 2D image on disk with its subject, label and the split its folder came from."""

    subject: str
    image_id: str
    label: str
    path: Path
    mask_path: Path | None
    source_split: str


def _list(
    path: str | os.PathLike[str], masks: str | os.PathLike[str] | None, layout: str | None
) -> tuple[ImageListing, Path | None]:
    """The dataset's listing by its layout, and the masks folder (kept out of the listing)."""
    root = require(path, "image folder")
    masks_dir = require(masks, "masks folder") if masks is not None else None
    skip = {masks_dir.resolve()} if masks_dir is not None else set()
    return layouts.pick(root, "images", layout).listing(root, skip), masks_dir


# --------------------------------------------------------------------------------------------
# the check made when the workflow starts


def class_folder_counts(
    path: str | os.PathLike[str],
    masks: str | os.PathLike[str] | None = None,
    subjects: str | os.PathLike[str] | None = None,
    unit: str = "subjects",
    layout: str | None = None,
) -> dict[str, int]:
    """Class name -> number of subjects (``unit="subjects"``) or images (``"slices"``) of a
    class-folder dataset, mildest first, from file names alone: the check made when the
    workflow starts. Without a subjects CSV every image is its own subject."""
    listing, _ = _list(path, masks, layout)
    subject_of = read_subjects(Path(subjects), listing.root) if subjects is not None else None
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


# --------------------------------------------------------------------------------------------
# discovery


def find_images(
    path: str | os.PathLike[str],
    masks: str | os.PathLike[str] | None = None,
    subjects: str | os.PathLike[str] | None = None,
    layout: str | None = None,
) -> tuple[list[ImageRef], list[str]]:
    """List the images of a class-folder dataset and its class names, mildest first.

    Layouts: ``path/{class}/*`` or ``path/{train,test,val}/{class}/*`` (splits are merged and
    recorded in ``source_split``). Known Alzheimer class names (NonDemented ... ModerateDemented
    in any spelling) are ordered by severity and given one canonical spelling; others are
    ordered alphabetically. Only image headers are read. ``layout`` names a registered layout
    instead of recognising it from the folder.
    """
    listing, masks_dir = _list(path, masks, layout)
    root, entries, names = listing.root, listing.entries, listing.names

    rels = [f.relative_to(root) for _, _, f in entries]
    sizes = [_image_size(f) for _, _, f in tqdm(entries, desc="checking images", disable=None)]
    image_ids = unique_ids([f.stem for _, _, f in entries], rels)
    subject_of = read_subjects(Path(subjects), root) if subjects is not None else None
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
    log_summary(root, refs, listing.class_names, None, None)
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


class _ImageMasks:
    """Label PNGs for 2D images: same relative path, else same stem (maybe with a suffix)."""

    def __init__(self, masks_dir: Path) -> None:
        self.dir = masks_dir
        self.files = walk(masks_dir, IMAGE_EXTS)
        if not self.files:
            raise InputError(masks_dir, "no mask images found")
        self.by_rel: dict[str, list[Path]] = defaultdict(list)
        self.by_prefix: dict[str, list[Path]] = defaultdict(list)
        for m in self.files:
            mrel = m.relative_to(masks_dir)
            self.by_rel[(mrel.parent / mrel.stem).as_posix().lower()].append(m)
            for t in TOKEN.finditer(m.stem):
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


# --------------------------------------------------------------------------------------------
# loading


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
