"""Fault injection for the tests of kill -9 and dead workers: one environment variable."""

import os
import signal
from typing import Final

FAULT_ENV: Final = "DOCTHEMES_FAULT_AT"
# With this set to a file path, only the first process to reach the point (and create the file)
# is killed: "one worker dies once", whichever worker it is.
FAULT_ONCE_ENV: Final = "DOCTHEMES_FAULT_ONCE"


def fault_point(name: str) -> None:
    """SIGKILL this process if ``$DOCTHEMES_FAULT_AT`` is ``name``.

    The points: ``snapshot-renamed`` (a snapshot complete, not yet switched to), ``switched``
    (switched, table links not yet made), ``remote-uploaded`` (an s3:// snapshot uploaded and
    marked complete, the pointer not yet switched) and ``embedding-task`` (a cluster worker
    that has just received a chunk of texts to embed). With ``$DOCTHEMES_FAULT_ONCE`` a path,
    only the process that creates that file is killed.
    """
    if os.environ.get(FAULT_ENV) != name:
        return
    once = os.environ.get(FAULT_ONCE_ENV)
    if once:
        try:
            os.close(os.open(once, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return
    os.kill(os.getpid(), signal.SIGKILL)
