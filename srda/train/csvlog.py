"""The training log every trainer writes (``train_log.csv``, ``classifier_log.csv``).

One row per step, appended and flushed as it comes. Values are kept as the text written, so
a value never goes through a float re-parse. ``text()`` is the log so far: the trainers keep it
in ``last.pt``, and a resumed run gets back exactly the rows up to its checkpoint's step even
when the file is gone (Snakemake removes a job's declared outputs, ``classifier_log.csv``
among them, before it reruns the job) or holds rows written after the checkpoint.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from srda.errors import InputError
from srda.shards import atomic_path

logger = logging.getLogger(__name__)


class CsvLog:
    """A per-step CSV log whose first column is ``step``.

    ``columns``: a fixed header (written at once; a row may leave columns empty); None: the
    first row's keys, widened once when a later row brings a new key (an objective's term that
    appears later). ``write`` False (a data-parallel process other than rank 0) writes nothing.
    """

    def __init__(
        self, path: Path, columns: Sequence[str] | None = None, write: bool = True
    ) -> None:
        self.path = Path(path)
        self.fixed = tuple(columns) if columns is not None else None
        self.write = write
        self.header: list[str] | None = list(self.fixed) if self.fixed else None
        self.rows: list[list[str]] = []

    def start(self, resume_step: int | None = None, saved: str | None = None) -> CsvLog:
        """A fresh log (``resume_step`` None: the file starts over), or the rows up to
        ``resume_step``: those of ``saved`` (a checkpoint's ``text()``) when given, else of the
        file. Returns the log."""
        self.header = list(self.fixed) if self.fixed else None
        self.rows = []
        if resume_step is not None:
            text = saved
            if text is None and self.path.exists():
                text = self.path.read_text()
            if text:
                header, rows = self._parse(text)
                kept = [r for r in rows if int(float(r[0])) <= resume_step]
                if len(kept) != len(rows):
                    logger.info(
                        "%s: dropped %d rows after step %d",
                        self.path,
                        len(rows) - len(kept),
                        resume_step,
                    )
                self.header, self.rows = header, kept
        if self.write:
            if self.header is None:
                self.path.unlink(missing_ok=True)  # written with the first row's keys
            else:
                self._rewrite()
        return self

    def _parse(self, text: str) -> tuple[list[str], list[list[str]]]:
        reader = csv.reader(io.StringIO(text))
        header = next(reader, None) or []
        rows = [r for r in reader if r]
        if not header or header[0] != "step":
            raise InputError(self.path, "training log does not start with a 'step' column")
        if self.fixed is not None and tuple(header) != self.fixed:
            raise InputError(self.path, f"log does not have the columns {list(self.fixed)}")
        return header, rows

    def text(self) -> str:
        """The log so far as CSV text (header and rows)."""
        out = io.StringIO()
        writer = csv.writer(out)
        if self.header is not None:
            writer.writerow(self.header)
        writer.writerows(self.rows)
        return out.getvalue()

    def _rewrite(self) -> None:
        with atomic_path(self.path) as tmp, open(tmp, "w", newline="") as fh:
            fh.write(self.text())

    def append(self, row: dict[str, Any]) -> None:
        """One step's row; a None value is written as an empty cell."""
        if self.header is None:
            self.header = list(row)
            if self.write:
                self._rewrite()
        new = [k for k in row if k not in self.header]
        if new and self.fixed is not None:
            raise ValueError(f"{self.path}: columns {new} are not among {list(self.fixed)}")
        if new:  # widen the file once
            self.header += new
            self.rows = [r + [""] * (len(self.header) - len(r)) for r in self.rows]
            if self.write:
                self._rewrite()
        cells = ["" if row.get(k) is None else str(row[k]) for k in self.header]
        self.rows.append(cells)
        if self.write:
            with open(self.path, "a", newline="") as fh:
                csv.writer(fh).writerow(cells)
