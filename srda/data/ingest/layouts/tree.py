"""Any folder tree of NIfTI files, the catch-all: ADNI downloads kept as delivered
(``ADNI/{PTID}/{description}/{date}/{series}/*.nii``), flat folders, nested folders."""

from __future__ import annotations

from pathlib import Path

from srda.data.ingest.files import nifti_files
from srda.data.ingest.layouts import VolumeFiles, VolumeLayout, register


def files(root: Path, skip: list[Path], modality: str | None) -> VolumeFiles:
    # every NIfTI file: the labels table decides which are scans of its subjects
    return VolumeFiles(nifti_files(root, skip))


register(VolumeLayout("tree", lambda root: True, files, rank=0))
