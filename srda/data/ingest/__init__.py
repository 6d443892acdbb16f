"""Ingest of real data: 3D NIfTI volumes (ADNI downloads, BIDS) and 2D class folders.

Two entry pairs, both streamed (discovery is cheap; voxel/pixel data is read one unit at a time):

- ``find_volumes`` walks a folder of ``.nii``/``.nii.gz`` files, gives each file its subject and
  label from a labels table, and checks every header; ``load_volume`` reads one volume,
  reoriented to the closest canonical (RAS+) orientation (``nifti``).
- ``find_images`` reads the Kaggle / Heywhale class-folder layout (``{class}/*`` or
  ``{train,test}/{class}/*``); ``load_image`` reads one image as grayscale in [0, 1]
  (``folders``).

How a dataset sits on disk is an input layout (``layouts``: one module each, discovered);
subjects and labels come from tables only (``tables``), never from path substrings (the
released SRDA code labelled a scan AD when its path contained "AD"); ``srda.data.labels``
reads the tables. Every bad input raises ``InputError`` naming the file and what is wrong.
"""

from srda.data.ingest.folders import (
    ImageRef,
    _read_gray,  # srda.upscale reads its inputs as ingest does
    check_class_folders,
    class_folder_counts,
    find_images,
    load_image,
)
from srda.data.ingest.layouts import NO_SPLIT, ImageLayout, VolumeLayout, register
from srda.data.ingest.nifti import (
    _NIFTI_ERRORS,
    DEFAULT_CLASSES,
    Volume,
    VolumeRef,
    _open_nifti,
    find_volumes,
    load_volume,
    usable_affine,
)

__all__ = [
    "DEFAULT_CLASSES",
    "NO_SPLIT",
    "ImageLayout",
    "ImageRef",
    "Volume",
    "VolumeLayout",
    "VolumeRef",
    "_NIFTI_ERRORS",
    "_open_nifti",
    "_read_gray",
    "check_class_folders",
    "class_folder_counts",
    "find_images",
    "find_volumes",
    "load_image",
    "load_volume",
    "register",
    "usable_affine",
]
