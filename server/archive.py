"""The archive: finished episodes kept in an embedded SQLite file, so that nothing finished is lost.

The episode store keeps episodes in memory and drops them when it must stay
bounded or when the server stops. Every episode that finishes is also
written here, with its grade, action trace and event log, so that
``GET /episodes/{id}``, ``POST /grader`` and the dashboard's replay still
answer after the episode left the store, and after a restart.

* One table, ``episodes``: the id, who owns it (see ``environment.py``), the
  task, the seed, when it finished, how many steps it took, the grade, the
  trace and the event log as JSON, and the size of that JSON.
* WAL journal, and every write is committed before it is acknowledged: a
  crash loses at most the write in flight, never one already answered.
* Bounded: at most ``max_episodes`` rows and ``max_bytes`` of JSON; the
  oldest finished go first (retention by count and by bytes). A single
  episode larger than ``max_record_bytes`` is kept without its event log
  (its trace and grade still fit) rather than not at all.
* All SQLite work runs on one thread of its own, which owns the connection:
  the server's event loop submits and awaits (``put``, ``get``,
  ``latest``), and never waits on the disk itself. The synchronous methods
  (``put_now``, ``get_now``, ...) submit the same work and wait for it, for
  tests and tools.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import orjson

__all__ = [
    "DEFAULT_ARCHIVE_PATH",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_EPISODES",
    "Archive",
    "ArchiveLimits",
    "ArchivedEpisode",
]

DEFAULT_ARCHIVE_PATH = "workflow_orchestrator_archive.sqlite3"
# About the last 10,000 episodes, in at most 512 MiB.
DEFAULT_MAX_EPISODES = 10_000
DEFAULT_MAX_BYTES = 512 * 1024 * 1024

_T = TypeVar("_T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS episodes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    episode_id TEXT NOT NULL UNIQUE,
    owner TEXT NOT NULL,
    client TEXT NOT NULL,
    chosen_id INTEGER NOT NULL,
    task_id TEXT NOT NULL,
    seed INTEGER,
    finished_at REAL NOT NULL,
    step_count INTEGER NOT NULL,
    grade BLOB NOT NULL,
    trace BLOB NOT NULL,
    events BLOB NOT NULL,
    size INTEGER NOT NULL,
    worker_count INTEGER,
    sealed INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS episodes_by_task ON episodes (task_id, client, seq);
CREATE INDEX IF NOT EXISTS episodes_by_age ON episodes (seq, size);
"""

_COLUMNS = (
    "episode_id, owner, client, chosen_id, task_id, seed, finished_at, step_count, grade, trace, events, size, "
    "worker_count, sealed"
)

# The same columns with the trace and the event log left out (a grade needs neither; a
# flooded episode's are megabytes of JSON to read and decode).
_COLUMNS_WITHOUT_HISTORY = _COLUMNS.replace("trace, events", "X'5B5D', X'5B5D'")


@dataclass(frozen=True, slots=True)
class ArchiveLimits:
    """How much the archive keeps; the oldest finished episodes go first.

    The defaults keep about the last 10,000 episodes in at most 512 MiB.
    """

    max_episodes: int = DEFAULT_MAX_EPISODES
    max_bytes: int = DEFAULT_MAX_BYTES
    # One episode's trace and event log; a larger one keeps its trace and grade only.
    max_record_bytes: int = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ArchivedEpisode:
    """One finished episode as the archive keeps it.

    ``owner`` is a digest of the episode's secret (never the secret itself),
    ``client`` the client that started it, ``chosen_id`` whether the client
    named it (then its secret is needed to use it).
    """

    episode_id: str
    owner: str
    client: str
    chosen_id: bool
    task_id: str
    seed: int | None
    finished_at: float
    step_count: int
    grade: dict[str, Any]
    # Entries as dicts (read back), or as JSON fragments (as the store hands them over).
    trace: list[Any]
    events: list[Any]
    size: int = 0
    # The worker count the episode was started with (generated tasks), so that it can be replayed.
    worker_count: int | None = None
    # Whether its outcomes were sealed by the server's outcome secret: a replay seals them by it
    # again. The archive keeps no key: only the server holds the secret.
    sealed: bool = False


class Archive:
    """Finished episodes in one SQLite file, bounded, written on a thread of its own."""

    def __init__(self, path: str | Path, limits: ArchiveLimits | None = None) -> None:
        self.path = Path(path)
        self.limits = limits or ArchiveLimits()
        if self.limits.max_episodes < 1 or self.limits.max_bytes < 1:
            raise ValueError("the archive's limits must be positive")
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="archive")
        self._connection: sqlite3.Connection | None = None
        # The rows kept and their bytes, counted once at open and then kept up to date by the archive's
        # thread (summing the sizes at every write read every row's pages: work that grew with the archive).
        self._count = 0
        self._bytes = 0
        self._closed = False
        self._lock = threading.Lock()
        # Opened on the archive's thread, which alone uses the connection.
        try:
            self._executor.submit(self._open).result()
        except RuntimeError:
            self._executor.shutdown(wait=False)
            raise

    # ---------------------------------------------------------------- async API (the event loop)

    def submit(self, function: Callable[..., _T], *args: Any) -> concurrent.futures.Future[_T]:
        """Run ``function(*args)`` on the archive's thread; the future is done once it has."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the archive is closed")
            return self._executor.submit(function, *args)

    def put_later(self, make: Callable[[], ArchivedEpisode]) -> concurrent.futures.Future[int]:
        """Build a record with ``make()`` and write it, both on the archive's thread.

        The store hands over a finished episode this way: turning its event
        log into JSON happens off the event loop too.
        """
        return self.submit(lambda: self._put(make()))

    async def put(self, record: ArchivedEpisode) -> None:
        await asyncio.wrap_future(self.submit(self._put, record))

    async def get(self, episode_id: str, history: bool = True) -> ArchivedEpisode | None:
        """The archived episode; without ``history``, its ``trace`` and ``events`` are left empty (not read)."""
        return await asyncio.wrap_future(self.submit(self._get, episode_id, history))

    async def latest(self, task_id: str, client: str, history: bool = True) -> ArchivedEpisode | None:
        return await asyncio.wrap_future(self.submit(self._latest, task_id, client, history))

    async def contains(self, episode_id: str) -> bool:
        return await asyncio.wrap_future(self.submit(self._contains, episode_id))

    # ---------------------------------------------------------------- blocking API (tests and tools)

    def put_now(self, record: ArchivedEpisode) -> int:
        """Write one finished episode and wait until it is committed; returns the bytes stored."""
        return self.submit(self._put, record).result()

    def get_now(self, episode_id: str, history: bool = True) -> ArchivedEpisode | None:
        return self.submit(self._get, episode_id, history).result()

    def latest_now(self, task_id: str, client: str, history: bool = True) -> ArchivedEpisode | None:
        return self.submit(self._latest, task_id, client, history).result()

    def contains_now(self, episode_id: str) -> bool:
        return self.submit(self._contains, episode_id).result()

    def totals_now(self) -> tuple[int, int]:
        """How many episodes are kept, and their bytes."""
        return self.submit(self._totals).result()

    def ids_now(self) -> list[str]:
        """Every kept id, oldest first."""
        return self.submit(self._ids).result()

    # ---------------------------------------------------------------- the archive's thread

    def _put(self, record: ArchivedEpisode) -> int:
        """Write one finished episode (replacing one of the same id) and trim to the bounds, in one commit."""
        grade = orjson.dumps(record.grade)
        trace = orjson.dumps(record.trace)
        events = orjson.dumps(record.events)
        if len(trace) + len(events) > self.limits.max_record_bytes:
            events = orjson.dumps([{"kind": "truncated", "reason": "event log over the archive's record bound"}])
        size = len(grade) + len(trace) + len(events)
        connection = self._require()
        with connection:  # one transaction: the row and the trim commit together
            replaced = connection.execute(
                "DELETE FROM episodes WHERE episode_id = ? RETURNING size", (record.episode_id,)
            ).fetchall()
            count = self._count + 1 - len(replaced)
            total = self._bytes + size - sum(row[0] for row in replaced)
            connection.execute(
                f"INSERT INTO episodes ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.episode_id,
                    record.owner,
                    record.client,
                    int(record.chosen_id),
                    record.task_id,
                    record.seed,
                    record.finished_at,
                    record.step_count,
                    grade,
                    trace,
                    events,
                    size,
                    record.worker_count,
                    int(record.sealed),
                ),
            )
            count, total = self._trim(connection, count, total)
        self._count, self._bytes = count, total  # committed
        return size

    def _get(self, episode_id: str, history: bool = True) -> ArchivedEpisode | None:
        columns = _COLUMNS if history else _COLUMNS_WITHOUT_HISTORY
        row = self._require().execute(f"SELECT {columns} FROM episodes WHERE episode_id = ?", (episode_id,)).fetchone()
        return None if row is None else _record(row)

    def _latest(self, task_id: str, client: str, history: bool = True) -> ArchivedEpisode | None:
        """The most recently finished episode of ``task_id`` started by ``client``."""
        columns = _COLUMNS if history else _COLUMNS_WITHOUT_HISTORY
        row = (
            self._require()
            .execute(
                f"SELECT {columns} FROM episodes WHERE task_id = ? AND client = ? ORDER BY seq DESC LIMIT 1",
                (task_id, client),
            )
            .fetchone()
        )
        return None if row is None else _record(row)

    def _contains(self, episode_id: str) -> bool:
        row = self._require().execute("SELECT 1 FROM episodes WHERE episode_id = ?", (episode_id,)).fetchone()
        return row is not None

    def _totals(self) -> tuple[int, int]:
        count, size = self._require().execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM episodes").fetchone()
        return int(count), int(size)

    def _ids(self) -> list[str]:
        return [row[0] for row in self._require().execute("SELECT episode_id FROM episodes ORDER BY seq")]

    # ---------------------------------------------------------------- lifetime

    def close(self) -> None:
        """Finish the writes already submitted, then close the file."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._executor.submit(self._close).result()
        self._executor.shutdown(wait=True)

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=30.0, isolation_level="DEFERRED")
            connection.execute("PRAGMA journal_mode=WAL")
            # FULL: a commit is on disk before it returns, so an acknowledged write survives a power cut too.
            connection.execute("PRAGMA synchronous=FULL")
            connection.executescript(_SCHEMA)
            columns = {row[1] for row in connection.execute("PRAGMA table_info(episodes)")}
            if "worker_count" not in columns:  # a file written before the column existed
                connection.execute("ALTER TABLE episodes ADD COLUMN worker_count INTEGER")
            if "sealed" not in columns:
                connection.execute("ALTER TABLE episodes ADD COLUMN sealed INTEGER NOT NULL DEFAULT 0")
            connection.commit()
            self._count, self._bytes = connection.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM episodes"
            ).fetchone()
        except (OSError, sqlite3.Error) as exc:
            raise RuntimeError(
                f"cannot open the archive {str(self.path)!r}: {exc}; give another --archive-path, or --no-archive"
            ) from exc
        self._connection = connection

    def _close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _require(self) -> sqlite3.Connection:
        if self._connection is None:
            raise RuntimeError("the archive is closed")
        return self._connection

    def _trim(self, connection: sqlite3.Connection, count: int, total: int) -> tuple[int, int]:
        """Drop the oldest rows until both bounds hold (the newest row always stays); the rows and bytes left.

        ``count`` and ``total`` are the rows and bytes before; the oldest rows are read from the
        (seq, size) index, never from the rows themselves."""
        if count <= self.limits.max_episodes and total <= self.limits.max_bytes:
            return count, total
        victims: list[tuple[int]] = []
        for seq, row_size in connection.execute("SELECT seq, size FROM episodes ORDER BY seq LIMIT ?", (count - 1,)):
            if count <= self.limits.max_episodes and total <= self.limits.max_bytes:
                break
            victims.append((seq,))
            count -= 1
            total -= row_size
        connection.executemany("DELETE FROM episodes WHERE seq = ?", victims)
        return count, total


def _record(row: tuple[Any, ...]) -> ArchivedEpisode:
    (
        episode_id,
        owner,
        client,
        chosen_id,
        task_id,
        seed,
        finished_at,
        step_count,
        grade,
        trace,
        events,
        size,
        workers,
        sealed,
    ) = row
    return ArchivedEpisode(
        episode_id=episode_id,
        owner=owner,
        client=client,
        chosen_id=bool(chosen_id),
        task_id=task_id,
        seed=seed,
        finished_at=finished_at,
        step_count=step_count,
        grade=orjson.loads(grade),
        trace=orjson.loads(trace),
        events=orjson.loads(events),
        size=size,
        worker_count=workers,
        sealed=bool(sealed),
    )
