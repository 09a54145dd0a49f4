"""One writer per store: an advisory file lock beside the SQLite file.

Two daemons, or a daemon and a manual `kpisync sync`, must never write the same
store at once. The lock file says who holds it, so the one refused can tell
the admin (exit 2). The OS drops the lock when its process dies, even by
SIGKILL, so a crashed run never leaves the store locked.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
from pathlib import Path
from typing import IO

from kpisync.errors import LockedError
from kpisync.timestamps import utc_now


class StoreLock:
    def __init__(self, store_path: Path | str, purpose: str) -> None:
        self.path = Path(f"{store_path}.lock")
        self.purpose = purpose
        self._file: IO[str] | None = None

    def acquire(self) -> StoreLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held until release()
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip()
            handle.close()
            raise LockedError(f"store {self.path.with_suffix('')} is in use by {_describe(holder)}") from None
        handle.seek(0)
        handle.truncate()
        handle.write(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                    "purpose": self.purpose,
                    "since": utc_now(),
                    "argv": " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv[:4])),
                }
            )
        )
        handle.flush()
        self._file = handle
        return self

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    def __enter__(self) -> StoreLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _describe(holder: str) -> str:
    try:
        info = json.loads(holder)
    except ValueError:
        return "another kpisync process"
    return f"pid {info.get('pid')} on {info.get('host')} ({info.get('purpose')}, since {info.get('since')})"
