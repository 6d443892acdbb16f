"""Which subject and label a file gets, from tables only (never from words in its path).

Volumes: an ADNI image id in the name or a folder is looked up first, then the subject IDs of
the labels table are matched against the path (``SubjectMatcher``). 2D images: a subjects CSV
keyed by file name, stem or relative path (``read_subjects``). The tables themselves are read by
``srda.data.labels``.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path

from srda.data.ingest.files import TOKEN, file_stem, nifti_stem, require
from srda.data.labels import (
    ADNI_IMAGE_ID,
    SUBJECT_COLUMNS,
    Labeller,
    LabelTable,
    find_column,
    read_table,
)
from srda.errors import InputError

_ADNI_ID_END = re.compile(r"_(I\d+)$", re.IGNORECASE)  # ..._S13408_I13722.nii
ADNI_ID_ANY = re.compile(r"(?:^|[_.\-])(I\d+)(?=$|[_.\-])", re.IGNORECASE)  # masks: anywhere
_ADNI_PTID = re.compile(r"\d{3}_S_\d{4}", re.IGNORECASE)

# Column names are compared after lower-casing and dropping spaces, "_" and "-".
_FILE_COLS = ("image", "imagename", "file", "filename", "filepath", "path", "imageid", "name")
_PATIENT_COLS = SUBJECT_COLUMNS + ("patient", "patientid")


class SubjectMatcher:
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
        stem = file_stem(rel)
        hits: set[str] = set()
        for part in (*rel.parts[:-1], stem):
            hits |= self._lookup(part)
        if hits:
            return sorted(hits)
        spans: dict[str, int] = {}
        tokens = [(m.start(), m.end()) for m in TOKEN.finditer(stem)]
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
    return rel.parts[0] if len(rel.parts) > 1 else nifti_stem(rel.name)


def adni_image_id(rel: Path) -> str | None:
    """``I13722`` from ``..._S13408_I13722.nii`` or from a folder ``I13722``; else None."""
    m = _ADNI_ID_END.search(nifti_stem(rel.name))
    if m:
        return m.group(1).upper()
    for part in reversed(rel.parts[:-1]):
        if ADNI_IMAGE_ID.match(part):
            return part.upper()
    return None


class VolumeLabels:
    """Subject and class of each volume file, from one labels table."""

    def __init__(self, table: LabelTable, to_class: Labeller) -> None:
        self.table = table
        self.to_class = to_class
        self.matcher = SubjectMatcher(table.subjects)

    def __call__(self, rel: Path, f: Path) -> tuple[str, str, str | None]:
        """(subject, class, ADNI image id or None) of the file ``f`` at ``rel``."""
        adni_id = adni_image_id(rel)
        hit = self.table.by_image.get(adni_id) if adni_id else None
        if hit is not None:
            return hit[0], self.to_class(hit[1], hit[0], f), adni_id
        subject = self._subject(rel, f)
        return subject, self._label(subject, f), adni_id

    def _subject(self, rel: Path, f: Path) -> str:
        found = self.matcher.match(rel)
        where = self.table.path
        if not found:
            raise InputError(where, f"labels CSV misses subject {_guess_subject(rel)} (image {f})")
        if len(found) > 1:
            raise InputError(f, f"path matches several subjects of {where}: {', '.join(found)}")
        return found[0]

    def _label(self, subject: str, f: Path) -> str:
        raws = self.table.by_subject.get(subject)
        if not raws:
            raise InputError(
                self.table.path, f"labels CSV has no label for subject {subject} (image {f})"
            )
        found = sorted({self.to_class(r, subject, f) for r in raws})
        if len(found) > 1:
            raise InputError(
                self.table.path,
                f"subject {subject} has conflicting labels {', '.join(found)} (image {f}); give "
                "one label per subject, or an 'Image Data ID' column to label each image",
            )
        return found[0]


def read_subjects(path: Path, root: Path) -> Callable[[Path], str]:
    """Image -> subject from a CSV keyed by file name, stem or path relative to the dataset."""
    path = require(path, "subjects CSV", "file")
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
