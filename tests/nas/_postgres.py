"""A private PostgreSQL cluster for tests: initdb into a temporary folder, localhost only.

:func:`start` returns ``(url, stop)`` or raises :class:`Unavailable` with the reason
(binaries or driver absent, or the server would not start), which the fixture turns
into a skip. As root (containers), the server runs as the ``postgres`` user.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable


class Unavailable(RuntimeError):
    """PostgreSQL cannot run here; the message says why."""


def _binary(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                                                   reverse=True)), None)
    if found is None:
        raise Unavailable(f"PostgreSQL's {name} is not installed (Debian: apt-get install postgresql)")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start() -> tuple[str, Callable[[], None]]:
    """Start a cluster; its SQLAlchemy URL and a function that stops and removes it."""
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        raise Unavailable("the psycopg2 driver is not installed (pip install psycopg2-binary)") from None
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    folder = tempfile.mkdtemp(prefix="nas-pg-")
    prefix: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(folder)
            raise Unavailable("running as root and there is no 'postgres' user") from None
        os.chown(folder, user.pw_uid, user.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    data, port = os.path.join(folder, "data"), _free_port()

    def run(*args: str) -> None:
        done = subprocess.run([*prefix, *args], capture_output=True, text=True, timeout=120)
        if done.returncode:
            shutil.rmtree(folder, ignore_errors=True)
            raise Unavailable(f"{os.path.basename(args[0])} failed: "
                              f"{(done.stderr or done.stdout).strip().splitlines()[-1:]}")

    run(initdb, "-D", data, "-A", "trust", "-U", "postgres", "--no-sync")
    options = f"-c listen_addresses=localhost -c port={port} -c unix_socket_directories={folder} " \
              "-c fsync=off -c max_connections=60"
    run(pg_ctl, "-D", data, "-o", options, "-l", os.path.join(folder, "log"), "-w", "start")

    def stop() -> None:
        subprocess.run([*prefix, pg_ctl, "-D", data, "-m", "immediate", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)

    return f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres", stop
