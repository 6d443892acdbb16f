"""The last lines of a failed run: each failed job's own error line, read from its log."""

from pathlib import Path

from srda.failures import error_line, failed_jobs, last_lines

SNAKEMAKE_LOG = """\
Select jobs to execute...
Error in rule prepare:
    message: None
    jobid: 3
    log: results/logs/prepare/mine.log (check log file(s) for error details)
    shell:
        srda-bench prepare --settings .snakemake/srda-settings/mine-0123.json --out results/mine
        (command exited with non-zero exit code)
Logfile results/logs/prepare/mine.log:
================================================================================
srda-bench prepare: error: labels.csv: dataset mine: too few subjects
================================================================================
Error in rule lanczos:
    jobid: 7
    log: results/logs/lanczos/a.log (check log file(s) for error details)
Error in rule report:
    jobid: 9
Exiting because a job execution failed. Look above for error messages
"""


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_failed_jobs_and_their_logs_in_order():
    assert failed_jobs(SNAKEMAKE_LOG) == [
        ("prepare", ["results/logs/prepare/mine.log"]),
        ("lanczos", ["results/logs/lanczos/a.log"]),
        ("report", []),
    ]


def test_error_line_is_the_suites_last_one():
    log = "INFO x\nsrda-bench prepare: error: a: first\nmore\nsrda-bench prepare: error: b: last\n"
    assert error_line(log) == "srda-bench prepare: error: b: last"
    assert error_line("Traceback (most recent call last):\nValueError: x\n") is None


def test_last_lines_name_each_failed_job_the_suites_message_where_there_is_one(tmp_path):
    _write(tmp_path / "sm.log", SNAKEMAKE_LOG)
    _write(
        tmp_path / "results/logs/prepare/mine.log",
        "2026 INFO srda: srda-bench prepare on host\n"
        "srda-bench prepare: error: labels.csv: dataset mine: too few subjects\n",
    )
    _write(tmp_path / "results/logs/lanczos/a.log", "Traceback ...\nOSError: disk full\n\n")
    lines = last_lines([tmp_path / "sm.log"], tmp_path).splitlines()
    assert lines == [
        "srda-bench prepare: error: labels.csv: dataset mine: too few subjects",
        "rule lanczos failed (log results/logs/lanczos/a.log): OSError: disk full",
        "rule report failed (no log)",
    ]
    (tmp_path / "results/logs/lanczos/a.log").unlink()
    assert "log results/logs/lanczos/a.log is empty or missing" in last_lines(
        [tmp_path / "sm.log"], tmp_path
    )
    _write(tmp_path / "ok.log", "Select jobs to execute...\n")
    assert last_lines([tmp_path / "ok.log"], tmp_path) is None
    assert last_lines([tmp_path / "missing.log"], tmp_path) is None
