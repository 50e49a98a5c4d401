"""The SQLite archive of finished episodes: kept across a restart, bounded, nothing acknowledged lost."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from workflow_orchestrator.server.archive import Archive, ArchivedEpisode, ArchiveLimits
from workflow_orchestrator.server.inprocess import WorkflowEnv


def finished_record(
    episode_id: str, task_id: str = "easy", seed: int = 1, client: str = "127.0.0.1"
) -> ArchivedEpisode:
    """A real finished episode (wait until the time budget runs out) as the archive keeps it."""
    env = WorkflowEnv()
    env.reset(task_id=task_id, seed=seed)
    while not env.done:
        env.step({"action_type": "wait"})
    core = env.episode
    assert core is not None
    return ArchivedEpisode(
        episode_id=episode_id,
        owner="digest",
        client=client,
        chosen_id=False,
        task_id=task_id,
        seed=seed,
        finished_at=1.0,
        step_count=core.step_count,
        grade=env.grade(),
        trace=list(core.trace),
        events=core.log.records,
    )


def test_an_episode_is_read_back_as_written_after_a_close_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "archive.sqlite3"
    record = finished_record("first")
    with Archive(path) as archive:
        stored = archive.put_now(record)
        assert stored > 0
    with Archive(path) as reopened:
        back = reopened.get_now("first")
        assert back is not None
        assert back.grade == record.grade and back.trace == record.trace and back.events == record.events
        assert (back.task_id, back.seed, back.step_count, back.client) == ("easy", 1, record.step_count, "127.0.0.1")
        assert back.size == stored
        assert reopened.get_now("unknown") is None
        assert reopened.contains_now("first") and not reopened.contains_now("unknown")
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_latest_is_the_newest_finished_episode_of_that_task_and_client(tmp_path: Path) -> None:
    record = finished_record("x")
    with Archive(tmp_path / "a.sqlite3") as archive:
        for episode_id, task_id, client in [
            ("a", "easy", "one"),
            ("b", "easy", "two"),
            ("c", "medium", "one"),
            ("d", "easy", "one"),
            ("e", "easy", "two"),
        ]:
            archive.put_now(
                ArchivedEpisode(**{**_fields(record), "episode_id": episode_id, "task_id": task_id, "client": client})
            )
        latest = archive.latest_now("easy", "one")
        assert latest is not None and latest.episode_id == "d"
        assert archive.latest_now("hard", "one") is None
        assert archive.latest_now("easy", "three") is None


def test_the_archive_keeps_the_newest_within_its_count_and_byte_bounds(tmp_path: Path) -> None:
    record = finished_record("x")
    with Archive(tmp_path / "count.sqlite3", ArchiveLimits(max_episodes=5)) as archive:
        for index in range(12):
            archive.put_now(ArchivedEpisode(**{**_fields(record), "episode_id": f"e{index}"}))
        assert archive.ids_now() == [f"e{index}" for index in range(7, 12)]
    with Archive(tmp_path / "bytes.sqlite3") as probe:
        one = probe.put_now(record)
    limit = one * 3 + one // 2
    with Archive(tmp_path / "bytes2.sqlite3", ArchiveLimits(max_bytes=limit)) as archive:
        for index in range(10):
            archive.put_now(ArchivedEpisode(**{**_fields(record), "episode_id": f"e{index}"}))
            count, size = archive.totals_now()
            assert size <= limit
        assert archive.ids_now() == ["e7", "e8", "e9"]


def test_the_totals_kept_while_writing_are_those_of_the_file(tmp_path: Path) -> None:
    """The rows and bytes the archive counts as it writes (it no longer sums every row at every write) stay
    those of the file through replacements, trims by count and by bytes, and a reopen."""
    record = finished_record("x")
    bigger = ArchivedEpisode(**{**_fields(record), "events": record.events * 3})
    path = tmp_path / "totals.sqlite3"
    with Archive(path) as probe:
        one = probe.put_now(record)
    path.unlink()
    limits = ArchiveLimits(max_episodes=6, max_bytes=one * 8)
    for _ in range(2):  # the second time on the reopened file
        with Archive(path, limits) as archive:
            for index in range(20):
                source = bigger if index % 3 == 0 else record
                episode_id = f"e{index % 9}"  # ids come back: their rows are replaced
                archive.put_now(ArchivedEpisode(**{**_fields(source), "episode_id": episode_id}))
                assert (archive._count, archive._bytes) == archive.totals_now()
                count, size = archive.totals_now()
                assert count <= 6 and (size <= one * 8 or count == 1)


def test_an_episode_over_the_record_bound_keeps_its_grade_and_trace(tmp_path: Path) -> None:
    record = finished_record("big")
    with Archive(tmp_path / "a.sqlite3", ArchiveLimits(max_record_bytes=len(str(record.trace)))) as archive:
        archive.put_now(record)
        back = archive.get_now("big")
        assert back is not None
        assert back.trace == record.trace and back.grade == record.grade
        assert back.events == [{"kind": "truncated", "reason": "event log over the archive's record bound"}]


def test_writes_run_on_the_archives_thread_not_the_event_loop(tmp_path: Path) -> None:
    seen: list[int] = []
    record = finished_record("x")
    with Archive(tmp_path / "a.sqlite3") as archive:

        def make() -> ArchivedEpisode:
            seen.append(threading.get_ident())
            return record

        async def main() -> int:
            loop_thread = threading.get_ident()
            await asyncio.wrap_future(archive.put_later(make))
            await archive.put(ArchivedEpisode(**{**_fields(record), "episode_id": "y"}))
            back = await archive.get("y")
            assert back is not None and await archive.contains("x")
            return loop_thread

        loop_thread = asyncio.run(main())
        assert seen and seen[0] != loop_thread
    with pytest.raises(RuntimeError):
        archive.put_now(record)


def test_a_crash_mid_write_loses_nothing_already_acknowledged(tmp_path: Path) -> None:
    """A child writes episodes and prints each id once its write returned; it is killed mid-stream."""
    path = tmp_path / "crash.sqlite3"
    script = textwrap.dedent(
        f"""
        import sys
        from workflow_orchestrator.server.archive import Archive, ArchivedEpisode
        archive = Archive({str(path)!r})
        events = [{{"kind": "wait", "t": index, "pad": "x" * 200}} for index in range(2000)]
        index = 0
        while True:
            record = ArchivedEpisode("e%d" % index, "o", "c", False, "easy", 1, 1.0, 3, {{"score": 0.5}}, [], events)
            archive.put_now(record)
            print(record.episode_id, flush=True)
            index += 1
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    acknowledged = []
    for line in child.stdout:
        acknowledged.append(line.strip())
        if len(acknowledged) == 40:
            os.kill(child.pid, signal.SIGKILL)
            break
    child.wait(timeout=30)
    acknowledged.extend(line.strip() for line in child.stdout)
    with Archive(path) as archive:
        kept = set(archive.ids_now())
        assert set(acknowledged) <= kept
        assert archive.get_now(acknowledged[-1]) is not None


def _fields(record: ArchivedEpisode) -> dict[str, object]:
    return {name: getattr(record, name) for name in ArchivedEpisode.__slots__}
