"""The one error training's library code raises: each command's `main` prints its message and exits 2."""

import sys

EXIT_STATUS = 2


class TrainingError(Exception):
    """Training cannot go on; the message says what is wrong and what to do."""


def exit_with(error: TrainingError) -> SystemExit:
    """The SystemExit a command's main raises for `error`: `error: MESSAGE` on stderr, status 2."""
    print(f"error: {error}", file=sys.stderr)
    return SystemExit(EXIT_STATUS)
