"""The one error type the CLI turns into a one-line message and a non-zero exit (and `describe`,
which puts an underlying exception into such a line)."""

from __future__ import annotations

from pathlib import Path


class InputError(Exception):
    """Bad user input: names the offending file (or config key) and what is wrong with it."""

    def __init__(self, where: str | Path, problem: str) -> None:
        self.where = str(where)
        self.problem = problem
        super().__init__(f"{self.where}: {problem}")


def describe(exc: BaseException) -> str:
    """An exception as a short phrase for a one-line message: its type and first line."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = text[:200]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
