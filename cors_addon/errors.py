"""Errors a user can act on, with the exit codes the CLI documents.

Bad input ends in one line naming the file and the problem, never a traceback.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FINDINGS = 1
"""``--fail-on`` matched: the audit ran and found what CI was told to fail on."""
EXIT_USAGE = 2
EXIT_INPUT = 3
"""A recording could not be read at all (missing, unreadable, not a recording)."""
EXIT_OUTPUT = 4
EXIT_INTERNAL = 70


def describe(exc: BaseException) -> str:
    """An exception in one line of at most about 200 characters."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


class RecordingError(Exception):
    """A recording that cannot be analysed; ``str()`` is the user's one line."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem
