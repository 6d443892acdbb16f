"""Labels tables of 3D datasets (an ADNI collection CSV, a plain subject,label CSV or a BIDS
participants.tsv) and the check of one against the split, which needs no image.

Only the standard library and the split rule are imported: the workflow reads a real dataset's
labels table when it starts (``check_labels``), before any job, to refuse a class the split
cannot serve there rather than after the data stage. ``srda.data.ingest`` uses the same reader
when it gives each volume its label.
"""

from __future__ import annotations

import csv
import logging
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from srda.data.split import SplitError, check_cohort
from srda.errors import InputError, describe

log = logging.getLogger(__name__)

#: An ADNI image id (``I13722``), as a folder name or a table value.
ADNI_IMAGE_ID = re.compile(r"^I\d+$", re.IGNORECASE)  # .../S13408/I13722/scan.nii

# Column names are compared after lower-casing and dropping spaces, "_" and "-".
SUBJECT_COLUMNS = ("subject", "subjectid", "participantid", "participant", "ptid", "subj")
_IMAGE_ID_COLS = ("imagedataid", "imageid", "imageuid")  # last: ADNIMERGE
_LABEL_COLS = ("label", "group", "researchgroup", "diagnosis", "dx", "dxbl", "class")
_MISSING = {"", "n/a", "na", "nan", "none", "null"}


def _norm_col(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", name.strip().lower())


def read_table(path: Path, what: str) -> tuple[list[str], list[dict[str, str]]]:
    """Header and rows of a CSV/TSV; the delimiter is sniffed from the header line."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            first = fh.readline()
            if path.suffix.lower() == ".tsv":
                delim = "\t"
            else:
                delim = max((",", "\t", ";"), key=first.count)
            fh.seek(0)
            rows = list(csv.reader(fh, delimiter=delim))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(path, f"cannot read {what} ({describe(exc)})") from exc
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        raise InputError(path, f"{what} is empty")
    header = [c.strip() for c in rows[0]]
    records = []
    for lineno, row in enumerate(rows[1:], start=2):
        if len(row) > len(header):
            raise InputError(path, f"line {lineno} has {len(row)} fields, the header {len(header)}")
        row = row + [""] * (len(header) - len(row))
        records.append({h: c.strip() for h, c in zip(header, row, strict=True)})
    return header, records


def find_column(
    header: Sequence[str], wanted: Sequence[str], given: str | None = None
) -> str | None:
    if given is not None:
        for h in header:
            if h == given.strip():
                return h
        for h in header:
            if _norm_col(h) == _norm_col(given):
                return h
        return None
    norm = {_norm_col(h): h for h in reversed(header)}  # first column wins on duplicates
    for w in wanted:
        if w in norm:
            return norm[w]
    return None


def _norm_image_id(value: str) -> str | None:
    v = re.sub(r"\.0+$", "", value.strip().upper())  # IMAGEUID saved as a float: "35475.0"
    if v.isdigit():
        v = "I" + v
    return v if ADNI_IMAGE_ID.match(v) else None


class LabelTable:
    """Subject and image-id labels from an ADNI collection CSV, a plain CSV or participants.tsv."""

    def __init__(self, path: Path, label_column: str | None) -> None:
        self.path = path
        header, rows = read_table(path, "labels table")
        cols = ", ".join(header)
        subj_col = find_column(header, SUBJECT_COLUMNS)
        label_col = find_column(header, _LABEL_COLS, label_column)
        if label_column is not None and label_col is None:
            raise InputError(path, f"no column '{label_column}' (label_column); columns are {cols}")
        if subj_col is None:
            raise InputError(
                path,
                "no subject column (expected one of subject, participant_id, ptid, "
                f"'Subject'); columns are {cols}",
            )
        if label_col is None:
            raise InputError(
                path,
                "no label column (expected one of label, group, diagnosis, dx, or set "
                f"label_column); columns are {cols}",
            )
        image_col = find_column(header, _IMAGE_ID_COLS)
        self.subjects: list[str] = []
        self.by_subject: dict[str, list[str]] = defaultdict(list)
        self.unlabelled: set[str] = set()
        self.by_image: dict[str, tuple[str, str]] = {}
        for row in rows:
            subject, raw = row[subj_col], row[label_col]
            if not subject:
                continue
            if subject not in self.by_subject and subject not in self.unlabelled:
                self.subjects.append(subject)
            if raw.lower() in _MISSING:
                self.unlabelled.add(subject)
                continue
            self.by_subject[subject].append(raw)
            if image_col is not None:
                image_id = _norm_image_id(row[image_col])
                if image_id is not None:
                    self.by_image[image_id] = (subject, raw)
        if not self.subjects:
            raise InputError(path, "labels table has no rows with a subject")
        log.info(
            "%s: %d subjects (subject column '%s', label column '%s'%s)",
            path,
            len(self.subjects),
            subj_col,
            label_col,
            f", image id column '{image_col}'" if image_col else "",
        )


class Labeller:
    """Raw label -> class name through ``label_map``; unknown labels are errors."""

    def __init__(
        self, table_path: Path, classes: Sequence[str], label_map: Mapping[str, str] | None
    ) -> None:
        if isinstance(classes, str) or not classes:
            raise InputError(table_path, f"classes must be a non-empty list, got {classes!r}")
        self.path = table_path
        self.classes = [str(c) for c in classes]
        self._class = {c.casefold(): c for c in self.classes}
        lm = {str(k).strip(): str(v).strip() for k, v in (label_map or {}).items()}
        self._exact = lm
        self._folded = {k.casefold(): v for k, v in lm.items()}

    def _mapped(self, raw: str) -> str:
        return self._exact.get(raw, self._folded.get(raw.casefold(), raw))

    def find(self, raw: str) -> str | None:
        """The class of a raw label, or None when it maps to none of the classes."""
        return self._class.get(self._mapped(raw).casefold())

    def __call__(self, raw: str, subject: str, image: Path) -> str:
        cls = self.find(raw)
        if cls is None:
            mapped = self._mapped(raw)
            via = f" (mapped from '{raw}')" if mapped != raw else ""
            raise InputError(
                self.path,
                f"unknown label '{mapped}'{via} for subject {subject} (image {image}); "
                f"expected one of {', '.join(self.classes)}; map it with label_map",
            )
        return cls


# --------------------------------------------------------------------------------------------
# the check at workflow start


def labels_file(settings: Mapping[str, Any]) -> Path:
    """The labels table of a 3D dataset: ``labels``, else the folder's participants.tsv."""
    if settings.get("labels"):
        return Path(settings["labels"]).expanduser()
    return Path(settings["path"]).expanduser() / "participants.tsv"


def class_subjects(
    table: LabelTable, to_class: Labeller
) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Subjects per class of a labels table (a subject labelled with two classes counts in
    both), and the subjects of each raw label that maps to no class."""
    per_class: dict[str, set[str]] = {c: set() for c in to_class.classes}
    unmapped: dict[str, set[str]] = defaultdict(set)
    for subject, raws in table.by_subject.items():
        for raw in raws:
            cls = to_class.find(raw)
            (per_class[cls] if cls is not None else unmapped[raw]).add(subject)
    return per_class, dict(unmapped)


def check_labels(settings: Mapping[str, Any]) -> None:
    """Refuse, from the labels table alone, a 3D dataset whose split cannot work: a configured
    class no subject has, or (split by subject) fewer subjects of a class than the split needs.

    ``settings``: a dataset's job settings (``srda.config.dataset_job_settings``). The table
    may list subjects without a volume, so passing here does not promise that the data stage
    will find enough images; it checks them again. 2D class folders are counted by
    ``srda.data.ingest.check_class_folders``.
    """
    if settings["source"] != "nifti":
        return
    path = labels_file(settings)
    table = LabelTable(path, settings.get("label_column"))
    to_class = Labeller(path, settings["classes"], settings.get("label_map") or None)
    per_class, unmapped = class_subjects(table, to_class)
    name = settings["name"]
    empty = [c for c, subjects in per_class.items() if not subjects]
    if empty:
        others = ", ".join(f"{raw} {len(s)}" for raw, s in sorted(unmapped.items()))
        kept = ", ".join(c for c in to_class.classes if c not in empty)
        hint = f"; other labels (subjects): {others}, which label_map can map" if others else ""
        raise InputError(
            path,
            f"dataset {name}: no subject of class {', '.join(empty)} in the labels table "
            f"(classes: {', '.join(to_class.classes)}){hint}; or leave the class out with "
            f"classes: [{kept}]",
        )
    if settings["split"] != "subjects":
        return  # in `slices` mode the units are slices, counted by the data stage
    try:
        counts = {c: len(subjects) for c, subjects in per_class.items()}
        check_cohort(counts, settings["split"], settings["split_fractions"])
    except SplitError as exc:
        raise InputError(path, f"dataset {name}: {exc} (subjects in the labels table)") from None
