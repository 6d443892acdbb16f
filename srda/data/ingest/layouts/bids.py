"""BIDS: ``sub-XX/[ses-YY/]anat/*_T1w.nii.gz`` or ``pet/*_pet.nii.gz``, ``participants.tsv``."""

from __future__ import annotations

import logging
from pathlib import Path

from srda.data.ingest.files import nifti_files, nifti_stem
from srda.data.ingest.layouts import VolumeFiles, VolumeLayout, register
from srda.errors import InputError

log = logging.getLogger(__name__)

_SUFFIXES = {"mri": ("_t1w",), "pet": ("_pet",), None: ("_t1w", "_pet")}
_SKIP = ("derivatives", "sourcedata", "code")


def _described(root: Path) -> bool:
    return (root / "participants.tsv").is_file() or (root / "dataset_description.json").is_file()


def detect(root: Path) -> bool:
    """A described dataset, or sub-XX folders at the top."""
    return _described(root) or any(c.name.startswith("sub-") and c.is_dir() for c in root.iterdir())


def files(root: Path, skip: list[Path], modality: str | None) -> VolumeFiles:
    found = nifti_files(root, [root / d for d in _SKIP] + skip)
    suffixes = _SUFFIXES[modality]
    kept = [f for f in found if nifti_stem(f.name).lower().endswith(suffixes)]
    if not kept and _described(root):
        raise InputError(
            root,
            f"no BIDS {'/'.join(s[1:] for s in suffixes)} images among {len(found)} "
            "NIfTI files (expected sub-XX/[ses-YY/]anat/*_T1w.nii.gz or pet/*_pet.nii.gz)",
        )
    if not kept:  # sub-XX folders without BIDS names: not BIDS enough to filter by suffix
        log.info("%s: no BIDS-suffixed files; taking every NIfTI file", root)
        kept = found
    tsv = root / "participants.tsv"
    return VolumeFiles(kept, tsv if tsv.is_file() else None)


register(VolumeLayout("bids", detect, files, rank=10))
