"""What a failed run says last: the suite's one-line error of each failed job, from its log.

Snakemake ends a failed run with its own lines (the job's shell command, "Exiting because a
job execution failed", "At least one job did not complete successfully") after the job's log,
so the line that says what is wrong sits far above the end. The workflow's ``onerror`` handler
(workflow/rules/common.smk) ends the output with ``last_lines`` instead. Standard library only:
the handler runs in Snakemake's own process.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

#: The line ``srda-bench`` writes to a job's log for bad input (srda/cli.py).
ERROR_LINE = re.compile(r"^srda-bench [\w-]+: error: .*\S", re.M)
_FAILED_JOB = re.compile(r"^Error in rule (\S+?):\n((?:[ \t]+.*\n?)*)", re.M)
_LOG = re.compile(r"^\s*log: (.+?)(?: \(check log file\(s\) for error details\))?$", re.M)


def failed_jobs(snakemake_log: str) -> list[tuple[str, list[str]]]:
    """(rule, its log files) of every job Snakemake reports as failed, in the order it did."""
    jobs = []
    for rule, body in _FAILED_JOB.findall(snakemake_log):
        logs = [name.strip() for entry in _LOG.findall(body) for name in entry.split(", ")]
        if (rule, logs) not in jobs:
            jobs.append((rule, logs))
    return jobs


def error_line(job_log: str) -> str | None:
    """The last suite error line of a job's log, or None (a traceback, another tool's output)."""
    found = ERROR_LINE.findall(job_log)
    return found[-1].strip() if found else None


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return None


def job_summary(rule: str, logs: list[str], workdir: Path) -> str:
    """One line for one failed job: its suite error line, else its log's last line."""
    texts = [(name, _read(workdir / name)) for name in logs]
    for _, text in texts:
        line = error_line(text or "")
        if line is not None:
            return line
    for name, text in texts:
        tail = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
        if tail:
            return f"rule {rule} failed (log {name}): {tail[-1]}"
    where = f"log {', '.join(logs)} is empty or missing" if logs else "no log"
    return f"rule {rule} failed ({where})"


def last_lines(snakemake_logs: Iterable[str | Path], workdir: Path | str = ".") -> str | None:
    """One line per failed job of a run (the suite's message where its job wrote one), read
    from Snakemake's own log files; None when they name no failed job."""
    text = "\n".join(t for t in (_read(Path(p)) for p in snakemake_logs) if t)
    lines = [job_summary(rule, logs, Path(workdir)) for rule, logs in failed_jobs(text)]
    return "\n".join(dict.fromkeys(lines)) or None
