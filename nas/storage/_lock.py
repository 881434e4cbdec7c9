"""One owner at a time for a run folder or a study: OS and database locks a crash releases.

A lock is held for as long as its holder lives, never by a marker file that a killed
process leaves behind: an ``flock`` on a file (the kernel drops it when the process
dies, ``kill -9`` included) or a PostgreSQL session advisory lock (the server drops it
when the holder's connection closes). Holders write who they are (pid, host, start
time) where the next comer can read it, so a refused writer gets one line naming the
folder or study and its owner.

Exclusive holders are single searches; shared holders are the workers of a search
spread over processes (:func:`nas.search.run_worker`): workers coexist, a single
search and workers exclude each other.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import hashlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from nas.errors import StorageError

__all__ = ["OwnerLock", "lock_run_folder", "owner_line"]

RUN_FOLDER_LOCK = ".nas-owner.lock"


def owner_line() -> str:
    """Who this process is: ``pid 123 on host h since 2026-12-02T09:40:00Z``."""
    started = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"pid {os.getpid()} on host {socket.gethostname()} since {started}"


class OwnerLock:
    """A held lock; :meth:`release` (or process death) frees it. Build with the factories."""

    def __init__(self, release: Any, what: str) -> None:
        self._release, self.what = release, what

    def release(self) -> None:
        """Free the lock (idempotent)."""
        if self._release is not None:
            self._release()
            self._release = None

    def __enter__(self) -> OwnerLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    @classmethod
    def file(cls, path: Path, what: str, *, shared: bool = False) -> OwnerLock:
        """``flock`` on ``path`` (created), exclusive or shared; refused in one line.

        Args:
            path: the lock file.
            what: how the locked thing is named in messages (``"run folder 'runs/a'"``).
            shared: take a shared lock (workers) instead of an exclusive one.
        """
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StorageError(f"cannot lock {what}: {path}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode(errors="replace").strip().splitlines()
            os.close(fd)
            owner = holder[-1] if holder else "another process"  # the latest holder
            raise StorageError(f"{what} is in use by {owner}; wait for it to finish "
                               f"or stop it") from None
        line = owner_line() + ("  (worker)" if shared else "") + "\n"
        if shared:  # workers add a line each; the file is truncated by the next owner
            os.lseek(fd, 0, os.SEEK_END)
            os.write(fd, line.encode())
        else:
            os.ftruncate(fd, 0)
            os.pwrite(fd, line.encode(), 0)

        def release() -> None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

        return cls(release, what)

    @classmethod
    def postgres(cls, engine: Any, study_name: str, what: str, *, shared: bool = False) -> OwnerLock:
        """A PostgreSQL session advisory lock keyed by ``study_name`` on a held connection;
        the holder's ``owner_line`` is kept in ``nas_owners`` for the refusal message."""
        import sqlalchemy as sa

        from nas.storage._log import OWNERS

        key = int.from_bytes(hashlib.sha1(f"nas:{study_name}".encode()).digest()[:8], "big",
                             signed=True)
        conn = engine.connect()
        fn = "pg_try_advisory_lock_shared" if shared else "pg_try_advisory_lock"
        got = conn.execute(sa.text(f"SELECT {fn}(:k)"), {"k": key}).scalar()
        conn.commit()
        if not got:
            rows = conn.execute(sa.select(OWNERS.c.owner).where(OWNERS.c.study_name == study_name)
                                .order_by(OWNERS.c.started.desc())).scalars().all()
            conn.close()
            owner = rows[0] if rows else "another process"
            raise StorageError(f"{what} is in use by {owner}; wait for it to finish or stop it")
        line = owner_line() + ("  (worker)" if shared else "")
        with engine.begin() as tx:
            if not shared:
                tx.execute(OWNERS.delete().where(OWNERS.c.study_name == study_name))
            tx.execute(OWNERS.insert().values(study_name=study_name, owner=line,
                                              started=_dt.datetime.now(_dt.timezone.utc).timestamp()))

        def release() -> None:
            with contextlib.suppress(Exception):  # a lost connection released it already
                with engine.begin() as tx:
                    tx.execute(OWNERS.delete().where((OWNERS.c.study_name == study_name)
                                                     & (OWNERS.c.owner == line)))
                conn.close()

        return cls(release, what)


@contextlib.contextmanager
def lock_run_folder(path: str | os.PathLike[str]) -> Iterator[OwnerLock]:
    """Hold ``path`` (a run's output folder, created) for this process while in the block.

    A second ``nas run`` / ``nas search`` on the same folder is refused with one line
    naming the folder and its owner; a killed owner leaves no stale lock.

    Raises:
        StorageError: the folder is in use (or cannot be created).
    """
    folder = Path(path)
    lock = OwnerLock.file(folder / RUN_FOLDER_LOCK, f"run folder '{folder}'")
    try:
        yield lock
    finally:
        lock.release()
