"""Input layouts: how a dataset folder is laid out on disk, one module each, discovered.

A layout finds a dataset's files and nothing more; subjects, labels, masks and header checks are
the same for every layout (``srda.data.ingest.nifti`` / ``folders``). Each module in this
package registers one ``VolumeLayout`` (3D NIfTI, ``source: nifti``) or ``ImageLayout`` (2D,
``source: folders``) with ``register``. When a dataset is read, the layouts of its kind are
asked in order of ``rank`` (highest first) whether a folder is theirs; a catch-all of rank 0
ends each list. Supporting a new layout is adding a file here; nothing else imports it.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from srda.errors import InputError

NO_SPLIT = "none"  # source_split of images from a layout without a train/test level


@dataclass(frozen=True)
class VolumeFiles:
    """The NIfTI files of a 3D dataset, and the labels table its layout carries (if any)."""

    files: list[Path]
    labels: Path | None = None  # used when the dataset entry names no labels table


@dataclass(frozen=True)
class ImageListing:
    """A 2D dataset as listed, before any image is opened."""

    root: Path  # the folder the images sit under (a wrapping folder stepped into)
    entries: list[tuple[str, str, Path]]  # (source split, class key, file)
    names: dict[str, str]  # class key -> class name
    class_names: list[str]  # mildest first


@dataclass(frozen=True)
class VolumeLayout:
    """``detect(root)``: is this folder laid out so? ``files(root, skip, modality)``: its
    volumes, leaving out the ``skip`` folders; ``modality`` is None, ``mri`` or ``pet``."""

    name: str
    detect: Callable[[Path], bool]
    files: Callable[[Path, list[Path], str | None], VolumeFiles]
    rank: int = 0
    kind = "volumes"


@dataclass(frozen=True)
class ImageLayout:
    """``detect(root)``: is this folder laid out so? ``listing(root, skip)``: its images and
    classes, leaving out the ``skip`` folders (resolved paths)."""

    name: str
    detect: Callable[[Path], bool]
    listing: Callable[[Path, set[Path]], ImageListing]
    rank: int = 0
    kind = "images"


Layout = VolumeLayout | ImageLayout
_LAYOUTS: dict[str, Layout] = {}


def register(layout: Layout) -> Layout:
    if layout.name in _LAYOUTS:
        raise ValueError(f"input layout {layout.name!r} is registered twice")
    _LAYOUTS[layout.name] = layout
    return layout


def layouts(kind: str) -> list[Layout]:
    """The registered layouts of one kind (``volumes`` / ``images``), in the order asked."""
    return sorted((lay for lay in _LAYOUTS.values() if lay.kind == kind), key=lambda lay: -lay.rank)


def pick(root: Path, kind: str, name: str | None = None) -> Layout:
    """The layout called ``name``, or the first of ``kind`` that recognises ``root``."""
    known = layouts(kind)
    if name is not None:
        for lay in known:
            if lay.name == name:
                return lay
        names = ", ".join(lay.name for lay in known)
        raise InputError("layout", f"unknown {kind} layout {name!r}; known layouts: {names}")
    for lay in known:
        if lay.detect(root):
            return lay
    raise InputError(root, f"no {kind} layout recognises this folder")  # no catch-all loaded


for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
