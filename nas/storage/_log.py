"""The evaluation log: one compact row per evaluated architecture, beside the Optuna study.

Table ``nas_evaluations`` in the study's own database (SQLite or PostgreSQL), primary
key ``(study_name, arch_key)``: an architecture has one row per study, whoever writes
it. A row is *claimed* (``state = 0``, ``owner``, ``heartbeat``) before it is evaluated
when several workers share a study, and *done* (``state = 1``) with its ``payload``
(JSON ``[values, constraints, violation, measures]``) once evaluated. A single search
writes done rows directly, one transaction per batch. Claims whose heartbeat is older
than ``stale_after`` seconds belong to a dead worker and may be taken over.

Table ``nas_owners`` holds who holds a study's PostgreSQL advisory lock (for messages).
See docs/decisions/evaluation-log.md for why this log and not one Optuna trial each.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import sqlalchemy as sa

from nas.errors import StorageError

__all__ = ["EVALUATIONS", "OWNERS", "EvaluationLog", "LogRow"]

CLAIMED, DONE = 0, 1
METADATA = sa.MetaData()
EVALUATIONS = sa.Table(
    "nas_evaluations", METADATA,
    sa.Column("study_name", sa.String(512), primary_key=True),
    sa.Column("arch_key", sa.String(64), primary_key=True),
    sa.Column("state", sa.SmallInteger, nullable=False),
    sa.Column("owner", sa.String(512)),
    sa.Column("heartbeat", sa.Float),
    sa.Column("batch", sa.Integer, nullable=False),
    sa.Column("idx", sa.Integer, nullable=False),
    sa.Column("trial", sa.Integer, nullable=False),
    sa.Column("arch", sa.Text, nullable=False),
    sa.Column("payload", sa.Text),
    sa.Index("nas_evaluations_order", "study_name", "batch", "idx"),
)
OWNERS = sa.Table(
    "nas_owners", METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("study_name", sa.String(512), nullable=False),
    sa.Column("owner", sa.String(512), nullable=False),
    sa.Column("started", sa.Float, nullable=False),
)

#: ``(arch_key, batch, index, trial, payload, arch JSON or None)`` of a done row.
LogRow = tuple[str, int, int, int, str, "str | None"]


def encode_payload(values: Sequence[float], constraints: Sequence[float], violation: float,
                   measures: Sequence[tuple[str, float]]) -> str:
    """The ``payload`` column of a done row."""
    return json.dumps([list(values), list(constraints), violation, [list(m) for m in measures]],
                      separators=(",", ":"))


def decode_payload(text: str) -> tuple[list[float], list[float], float, list[list[Any]]]:
    """``(values, constraints, violation, measures)`` of a ``payload`` column."""
    values, constraints, violation, measures = json.loads(text)
    return values, constraints, violation, measures


def _engine(url: str | None) -> sa.Engine:
    if url is None:  # in memory: one connection shared by the session's threads
        return sa.create_engine("sqlite://", poolclass=sa.pool.StaticPool,
                                connect_args={"check_same_thread": False, "isolation_level": None})
    if url.startswith("sqlite:"):
        # Autocommit at the driver: transactions are opened explicitly (BEGIN IMMEDIATE takes
        # the write lock up front, so concurrent claims serialise instead of deadlocking).
        engine = sa.create_engine(url, connect_args={"isolation_level": None, "timeout": 60})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


class EvaluationLog:
    """The evaluation rows of one study (see the module docstring).

    Args:
        url: the study's SQLAlchemy URL (``None``: a private in-memory SQLite database).
        study_name: the study.
        create: create the tables when missing (readers pass ``False``).
    """

    def __init__(self, url: str | None, study_name: str, *, create: bool = True) -> None:
        self.url, self.study_name = url, study_name
        try:
            self.engine = _engine(url)
            self.exists = sa.inspect(self.engine).has_table(EVALUATIONS.name)
            if create and not self.exists:
                with contextlib.suppress(sa.exc.OperationalError, sa.exc.ProgrammingError,
                                         sa.exc.IntegrityError):  # another worker made them
                    METADATA.create_all(self.engine, checkfirst=True)
                self.exists = True
        except sa.exc.SQLAlchemyError as exc:
            raise StorageError(f"cannot open the evaluation log in {url}: "
                               f"{str(exc).splitlines()[0]}") from None
        self.sqlite = self.engine.dialect.name == "sqlite"
        self._claim_key = int.from_bytes(
            hashlib.sha1(f"nas-claim:{study_name}".encode()).digest()[:8], "big", signed=True)
        self._where = EVALUATIONS.c.study_name == study_name

    def close(self) -> None:
        """Release the connections."""
        self.engine.dispose()

    @contextlib.contextmanager
    def _write(self, serialise: bool = False) -> Iterator[sa.Connection]:
        """One write transaction; ``serialise``: one at a time across processes (claims)."""
        with self.engine.connect() as conn:
            if self.sqlite:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            elif serialise and self.engine.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": self._claim_key})
            try:
                yield conn
            except BaseException:
                conn.rollback()
                raise
            conn.commit()

    def _insert(self) -> Any:
        """An INSERT that skips rows whose key exists (repeats are never stored twice)."""
        name = self.engine.dialect.name
        if name in ("sqlite", "postgresql"):
            module = sa.dialects.sqlite if name == "sqlite" else sa.dialects.postgresql
            return module.insert(EVALUATIONS).on_conflict_do_nothing()
        return EVALUATIONS.insert()

    # single owner --------------------------------------------------------------------------
    def add(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert done rows (dicts of the columns but ``study_name``) in one transaction."""
        if not rows:
            return
        rows = [{"study_name": self.study_name, "state": DONE, "owner": None, "heartbeat": None,
                 **row} for row in rows]
        with self._write() as conn:
            conn.execute(self._insert(), rows)

    def count(self) -> int:
        """Rows of this study (done or claimed)."""
        if not self.exists:
            return 0
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).where(self._where)).scalar_one()

    def done(self, *, archs: bool = False, keys: Iterable[str] | None = None) -> Iterator[LogRow]:
        """Done rows in (batch, index) order, streamed; ``keys`` restricts to those keys."""
        if not self.exists:
            return
        c = EVALUATIONS.c
        columns = [c.arch_key, c.batch, c.idx, c.trial, c.payload, c.arch if archs else sa.null()]
        query = sa.select(*columns).where(self._where & (c.state == DONE))
        if keys is not None:
            query = query.where(c.arch_key.in_(list(keys)))
        with self.engine.connect() as conn:
            result = conn.execution_options(yield_per=5000).execute(query.order_by(c.batch, c.idx))
            yield from result

    # many workers --------------------------------------------------------------------------
    def counts(self, stale_after: float) -> tuple[int, int]:
        """``(done, live claims)`` of the study."""
        c, now = EVALUATIONS.c, time.time()
        with self.engine.connect() as conn:
            done = conn.execute(sa.select(sa.func.count()).where(self._where & (c.state == DONE))
                                ).scalar_one()
            live = conn.execute(sa.select(sa.func.count()).where(
                self._where & (c.state == CLAIMED) & (c.heartbeat > now - stale_after))).scalar_one()
        return done, live

    def claim(self, archs: Sequence[tuple[str, str]], owner: str, budget: int,
              stale_after: float) -> dict[str, str]:
        """Claim ``(arch_key, arch JSON)`` pairs for ``owner`` within ``budget`` rows.

        In one serialised transaction: a key with no row is claimed while the study
        holds fewer than ``budget`` done or live rows; a stale claim is taken over.

        Returns:
            per key: ``"claimed"`` (evaluate it), ``"done"`` (read it), ``"busy"``
            (another live worker evaluates it) or ``"full"`` (the budget is claimed).
        """
        c, now = EVALUATIONS.c, time.time()
        keys = [key for key, _ in archs]
        with self._write(serialise=True) as conn:
            found = {row.arch_key: row for row in conn.execute(
                sa.select(c.arch_key, c.state, c.owner, c.heartbeat).where(
                    self._where & c.arch_key.in_(keys)))}
            used = conn.execute(sa.select(sa.func.count()).where(self._where & (
                (c.state == DONE) | (c.heartbeat > now - stale_after)))).scalar_one()
            trial = conn.execute(sa.select(sa.func.count()).where(self._where)).scalar_one()
            status, new, taken = {}, [], []
            for key, arch in archs:
                row = found.get(key)
                if key in status:
                    continue
                if row is not None and row.state == DONE:
                    status[key] = "done"
                elif row is not None and row.owner != owner and row.heartbeat > now - stale_after:
                    status[key] = "busy"
                elif used >= budget:
                    status[key] = "full"
                else:
                    status[key], used = "claimed", used + 1
                    if row is None:
                        new.append({"study_name": self.study_name, "arch_key": key, "state": CLAIMED,
                                    "owner": owner, "heartbeat": now, "batch": trial, "idx": 0,
                                    "trial": trial, "arch": arch, "payload": None})
                        trial += 1
                    else:
                        taken.append(key)
            if new:
                conn.execute(EVALUATIONS.insert(), new)
            if taken:
                conn.execute(EVALUATIONS.update().where(self._where & c.arch_key.in_(taken))
                             .values(owner=owner, heartbeat=now))
        return status

    def take_stale(self, owner: str, stale_after: float, limit: int) -> list[tuple[str, str]]:
        """Take over up to ``limit`` stale claims (of dead workers): their ``(key, arch JSON)``."""
        c, now = EVALUATIONS.c, time.time()
        with self._write(serialise=True) as conn:
            rows = conn.execute(sa.select(c.arch_key, c.arch).where(
                self._where & (c.state == CLAIMED) & (c.heartbeat <= now - stale_after))
                .limit(limit)).all()
            if rows:
                conn.execute(EVALUATIONS.update().where(
                    self._where & c.arch_key.in_([r.arch_key for r in rows]))
                    .values(owner=owner, heartbeat=now))
        return [(r.arch_key, r.arch) for r in rows]

    def finish(self, rows: Sequence[tuple[str, str]]) -> None:
        """Mark claimed ``(arch_key, payload)`` rows done, in one transaction."""
        if not rows:
            return
        c = EVALUATIONS.c
        update = (EVALUATIONS.update()
                  .where(self._where & (c.arch_key == sa.bindparam("key")) & (c.state == CLAIMED))
                  .values(state=DONE, payload=sa.bindparam("payload_value"), owner=None))
        with self._write() as conn:
            conn.execute(update, [{"key": k, "payload_value": p} for k, p in rows])

    def heartbeat(self, owner: str) -> None:
        """Refresh ``owner``'s live claims."""
        c = EVALUATIONS.c
        with self._write() as conn:
            conn.execute(EVALUATIONS.update().where(
                self._where & (c.owner == owner) & (c.state == CLAIMED)).values(heartbeat=time.time()))
