"""Progress lines of the training commands, on stderr: `[train 12:00:00] message`."""

import sys
import time
from collections.abc import Callable

PROGRESS_SECONDS = 10  # a step that runs longer says how far it is (and its ETA) at least this often


def logger(command: str) -> Callable[[str], None]:
    """A function printing one progress line of `command` per call."""

    def log(message: str) -> None:
        print(f"[{command} {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    return log
