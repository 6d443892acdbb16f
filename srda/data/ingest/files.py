"""What every input layout shares: checked paths, the file walk, unique image ids, the summary.

Nothing here opens an image; the NIfTI and image readers sit in ``nifti`` and ``folders``.
"""

from __future__ import annotations

import logging
import os
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal, Protocol

from srda.errors import InputError

log = logging.getLogger(__name__)

NIFTI_RE = re.compile(r"\.nii(\.gz)?$", re.IGNORECASE)
IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}
TOKEN = re.compile(r"[^_.\-]+")  # subject IDs and mask names are matched on _ - . boundaries


def require(
    path: str | os.PathLike[str], what: str, kind: Literal["folder", "file"] = "folder"
) -> Path:
    """``path`` as a Path, or an InputError naming it when it is missing or not a ``kind``."""
    p = Path(path).expanduser()
    if not p.exists():
        raise InputError(p, f"{what} does not exist")
    if not (p.is_dir() if kind == "folder" else p.is_file()):
        raise InputError(p, f"{what} is not a {kind}")
    return p


def nifti_stem(name: str) -> str:
    return NIFTI_RE.sub("", name)


def file_stem(rel: Path) -> str:
    """The name without its extension; both of ``.nii.gz`` for NIfTI files."""
    return nifti_stem(rel.name) if NIFTI_RE.search(rel.name) else rel.stem


def hidden_dir(name: str) -> bool:
    # "__MACOSX" is the resource-fork folder macOS zips carry alongside the real data
    return name.startswith(".") or name == "__MACOSX"


def walk(root: Path, keep: re.Pattern[str] | set[str], skip: Iterable[Path] = ()) -> list[Path]:
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
        dirnames[:] = sorted(d for d in dirnames if not hidden_dir(d))
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


def nifti_files(root: Path, skip: Iterable[Path] = ()) -> list[Path]:
    """Every NIfTI file under ``root``; an error when there is none."""
    files = walk(root, NIFTI_RE, skip)
    if not files:
        raise InputError(root, "no NIfTI files (.nii or .nii.gz) found")
    return files


def unique_ids(ids: Sequence[str], rels: Sequence[Path]) -> list[str]:
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
            i = (rel.parent / file_stem(rel)).as_posix()
        out.append(i)
    dup = clashes(out)
    return [rel.as_posix() if i.lower() in dup else i for i, rel in zip(out, rels, strict=True)]


class Unit(Protocol):
    """What the summary reads of a VolumeRef or an ImageRef."""

    @property
    def subject(self) -> str: ...

    @property
    def label(self) -> str: ...


def log_summary(
    root: Path,
    refs: Sequence[Unit],
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
