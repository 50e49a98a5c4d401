"""The OpenEnv adapter: sessions and a bounded episode store in front of the core.

The core (``server/core``) owns everything about one episode. This module owns
only which episodes exist:

* :class:`EpisodeStore` keeps episodes by id so that plain HTTP clients can
  continue one across requests. It is bounded by count and by idle time, in
  total and per client; episodes held by a live WebSocket session are never
  evicted. Finished episodes also go to the archive (``archive.py``), when
  there is one.

Who may use an episode (the rule the README states):

* An episode belongs to whoever created it. ``/reset`` returns a secret for
  it (``episode_secret``); a request that carries it (header
  ``X-Episode-Secret``) must carry the right one.
* An id the server made is 128 random bits and is given only to its
  creator, so knowing it is enough: a request without the secret is
  accepted, as it always was. An id the client chose can be guessed, so
  every request on such an episode needs the secret.
* A chosen id is never given a second time while the server remembers it:
  not while the episode is stored, archived, or among the recently evicted
  and finished ids (a bounded list), so a stranger cannot re-create an
  evicted episode under its old id.
* A WebSocket session owns the episodes it plays by its connection.
* The store's bounds hold per client (the client's network address, or
  ``dashboard``), as well as in total: a client at its own bound loses its
  own least recently used episode, and a full store takes from whichever
  client holds the most, so one client cannot push out everyone else.
* :class:`WorkflowEnvironment` is openenv's ``Environment`` for one session
  (a WebSocket connection): ``reset`` starts a new episode in the store,
  ``step`` continues it, ``close`` releases it.

Everything here runs on the server's event loop thread: the async methods do
the work inline (a step is microseconds of pure Python, so handing it to a
thread pool would cost more than it saves), which also means the store needs
no locks.
"""

from __future__ import annotations

import bisect
import concurrent.futures
import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from openenv.core.env_server.interfaces import Environment
from openenv.core.env_server.types import EnvironmentMetadata

from workflow_orchestrator.models import GradeResult, WorkflowAction, WorkflowObservation, WorkflowState
from workflow_orchestrator.server.archive import Archive, ArchivedEpisode
from workflow_orchestrator.server.inprocess import WorkflowEnv
from workflow_orchestrator.server.taskapi import TaskCatalogue
from workflow_orchestrator.server.tasks import TaskRegistry, UnknownTaskError

logger = logging.getLogger("workflow_orchestrator.server")

# The client of in-process callers that name none (tests, tools).
LOCAL_CLIENT = "local"


class EpisodeNotFoundError(LookupError):
    """No episode with this id: never created, or expired and evicted."""

    def __init__(self, episode_id: str, expired: bool) -> None:
        super().__init__(episode_id)
        self.episode_id = episode_id
        self.expired = expired

    def __str__(self) -> str:
        if self.expired:
            return (
                f"episode {self.episode_id!r} has expired (idle too long, or evicted to keep "
                "the episode store bounded); start a new one with POST /reset"
            )
        return f"unknown episode_id {self.episode_id!r}; POST /reset returns a new one"


class EpisodeNotFinishedError(RuntimeError):
    """Grading was asked of an episode that is still running."""


class DuplicateEpisodeError(ValueError):
    """A client-chosen episode id that is already in use, or was used before."""


class EpisodeForbiddenError(PermissionError):
    """The request does not carry the episode's secret, or carries another one."""

    def __init__(self, episode_id: str, secret_given: bool) -> None:
        super().__init__(episode_id)
        self.episode_id = episode_id
        self.secret_given = secret_given

    def __str__(self) -> str:
        if self.secret_given:
            return f"the X-Episode-Secret header does not match episode {self.episode_id!r}"
        return (
            f"episode {self.episode_id!r} was named by its client, so it needs the episode_secret that "
            "POST /reset returned, in the header X-Episode-Secret"
        )


class StepCountMismatchError(RuntimeError):
    """An idempotent step whose expected step count is neither the current one nor a retry of the last."""


@dataclass(slots=True)
class StoredEpisode:
    """One episode in the store, with the bookkeeping the store needs."""

    episode_id: str
    task_id: str
    env: WorkflowEnv
    last_active_at: float
    # WebSocket sessions currently playing this episode; such an episode is
    # never evicted, so a live session cannot lose its episode under it.
    live_sessions: int = 0
    finished: bool = False
    seed: int | None = None
    step_count: int = field(default=0)
    worker_count: int | None = None
    # Who owns it (see the module docstring): the secret /reset returned,
    # whether the client chose the id, and the client it is counted against.
    secret: str = ""
    chosen_id: bool = False
    client: str = LOCAL_CLIENT
    # The last idempotent step: the step count it expected, and its answer.
    last_reply: tuple[int, dict[str, Any]] | None = None
    # The trace and log as JSON, kept by the answers that carry them (see JsonHistory).
    history: JsonHistory | None = None

    # The archive's write of this episode, once it finished.
    archived: concurrent.futures.Future[int] | None = None

    def owned_by(self, secret: str | None) -> bool:
        """Whether a request carrying ``secret`` (None: no secret) may use this episode."""
        if secret is None:
            return not self.chosen_id
        return hmac.compare_digest(secret.encode(), self.secret.encode())

    def serialized_history(self) -> JsonHistory:
        """The episode's action trace and event log, each entry serialized once (see :class:`JsonHistory`)."""
        core = self.env.episode
        if self.history is None or self.history.episode is not core:
            self.history = JsonHistory(core)
        self.history.update()
        return self.history


# How much of an episode's history (its action trace and its event log) one
# answer carries: at most HISTORY_PAGE_ENTRIES entries of each list (fewer if
# the client asks), and no more entries of a list than fit in
# HISTORY_PAGE_BYTES of JSON (always at least one). A whole honest episode of
# any task fits in one page many times over (the largest seen: 111 events,
# 64 trace entries, 15 KB); an episode flooded with the largest invalid
# actions (5 MB of history) takes about 20 pages.
HISTORY_PAGE_ENTRIES = 10_000
HISTORY_PAGE_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """Which part of an episode's history an answer carries: the first entry of each list, and how many."""

    trace_from: int = 0
    events_from: int = 0
    limit: int = HISTORY_PAGE_ENTRIES

    @classmethod
    def parse(cls, data: Any) -> HistoryPage:
        """From a WebSocket ``state`` message's data (None or a mapping); raises ``ValueError`` for bad fields."""
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise ValueError("a state message's data must be an object (or absent)")
        unknown = sorted(set(data) - {"trace_from", "events_from", "history_limit"})
        if unknown:
            raise ValueError(f"unknown state fields: {', '.join(unknown)}; use trace_from, events_from, history_limit")
        values = []
        for name, default, top in (
            ("trace_from", 0, None),
            ("events_from", 0, None),
            ("history_limit", HISTORY_PAGE_ENTRIES, HISTORY_PAGE_ENTRIES),
        ):
            value = data.get(name, default)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0 or (top is not None and value > top):
                bound = f"from 0 to {top}" if top is not None else "0 or more"
                raise ValueError(f"{name} must be an integer {bound}")
            values.append(value)
        return cls(*values)


def page_of(fragments: list[orjson.Fragment], ends: list[int], start: int, limit: int) -> tuple[list[Any], int | None]:
    """Entries of one list from ``start`` on, within the page's bounds; and where the next page starts (or None).

    ``ends[i]`` is the JSON size of entries ``0..i`` together.
    """
    total = len(fragments)
    if start >= total or limit == 0:
        return [], (start if start < total else None)
    stop = min(total, start + limit)
    before = ends[start - 1] if start else 0
    # The entries whose sizes together fit in the byte budget, and always the first.
    fit = bisect.bisect_right(ends, before + HISTORY_PAGE_BYTES, start, stop)
    stop = max(start + 1, fit)
    return fragments[start:stop], (stop if stop < total else None)


def page_of_records(records: list[Any], start: int, limit: int) -> tuple[list[Any], int | None]:
    """:func:`page_of` for plain entries (an archived episode's), serialized for their sizes up to the page's end."""
    total = len(records)
    if start >= total or limit == 0:
        return [], (start if start < total else None)
    page: list[Any] = []
    size = 0
    index = start
    while index < total and len(page) < limit:
        data = orjson.dumps(records[index])
        if page and size + len(data) > HISTORY_PAGE_BYTES:
            break
        size += len(data)
        page.append(orjson.Fragment(data))
        index += 1
    return page, (index if index < total else None)


def history_answer(
    trace: tuple[list[Any], int | None],
    events: tuple[list[Any], int | None],
    totals: tuple[int, int],
    page: HistoryPage,
) -> dict[str, Any]:
    """An answer's ``trace``, ``events`` and ``history`` (how many entries exist, where the next page starts)."""
    return {
        "trace": trace[0],
        "events": events[0],
        "history": {
            "trace_total": totals[0],
            "trace_from": page.trace_from,
            "trace_next": trace[1],
            "events_total": totals[1],
            "events_from": page.events_from,
            "events_next": events[1],
            "complete": trace[1] is None and events[1] is None,
        },
    }


def archived_history(record: ArchivedEpisode, page: HistoryPage) -> dict[str, Any]:
    """One page of an archived episode's history (see :func:`history_answer`)."""
    return history_answer(
        page_of_records(record.trace, page.trace_from, page.limit),
        page_of_records(record.events, page.events_from, page.limit),
        (len(record.trace), len(record.events)),
        page,
    )


class JsonHistory:
    """An episode's action trace and event log as JSON fragments, each entry serialized once.

    ``GET /state``, the WebSocket ``state`` and ``/episodes/{id}`` carry the
    history, a page at a time (:class:`HistoryPage`). Rebuilt at every read,
    it cost time on the event loop in proportion to the episode's length
    (over 30 ms for a long episode of the largest invalid actions, during
    which no other client was answered); the trace and the log only grow, so
    the entries already serialized are kept, with their running JSON sizes
    (for the pages' byte bound), and a read serializes only the new ones.
    Read on the event loop, between steps, so a read sees the episode
    between two steps."""

    __slots__ = ("episode", "events", "events_ends", "lock", "trace", "trace_ends")

    def __init__(self, episode: Any) -> None:
        self.episode = episode
        self.trace: list[orjson.Fragment] = []
        self.events: list[orjson.Fragment] = []
        self.trace_ends: list[int] = []
        self.events_ends: list[int] = []
        # The archive's thread completes the history of a finished episode too (see archive_record).
        self.lock = threading.Lock()

    def update(self) -> None:
        core = self.episode
        with self.lock:
            if len(self.trace) < core.trace_length:
                _extend(self.trace, self.trace_ends, core.trace_since(len(self.trace)))
            if len(self.events) < len(core.log):
                _extend(self.events, self.events_ends, core.log.records_since(len(self.events)))

    def page(self, page: HistoryPage) -> dict[str, Any]:
        """One page of the history (see :func:`history_answer`)."""
        return history_answer(
            page_of(self.trace, self.trace_ends, page.trace_from, page.limit),
            page_of(self.events, self.events_ends, page.events_from, page.limit),
            (len(self.trace), len(self.events)),
            page,
        )


def _extend(fragments: list[orjson.Fragment], ends: list[int], entries: list[dict[str, Any]]) -> None:
    size = ends[-1] if ends else 0
    for entry in entries:
        data = orjson.dumps(entry)
        size += len(data)
        fragments.append(orjson.Fragment(data))
        ends.append(size)


def secret_digest(secret: str) -> str:
    """What the archive keeps of a secret: its SHA-256, never the secret itself."""
    return hashlib.sha256(secret.encode()).hexdigest()


def archived_owned_by(record: ArchivedEpisode, secret: str | None) -> bool:
    """:meth:`StoredEpisode.owned_by` for an archived episode."""
    if secret is None:
        return not record.chosen_id
    return hmac.compare_digest(secret_digest(secret), record.owner)


@dataclass(frozen=True, slots=True)
class StoreLimits:
    max_episodes: int = 256
    # No client holds more than this many (nor more than max_episodes).
    max_episodes_per_client: int = 64
    idle_timeout_s: float = 900.0
    # Ids of evicted episodes remembered so that a late client is told
    # "expired" rather than "unknown", and that a chosen id is not given
    # again; bounded like everything else.
    remembered_evictions: int = 4096


class EpisodeStore:
    """Episodes by id, least recently used first, bounded by count (in total and per client) and idle time."""

    def __init__(
        self,
        registry: TaskRegistry,
        limits: StoreLimits,
        clock: Callable[[], float] = time.monotonic,
        outcome_secret: str | bytes | None = None,
        archive: Archive | None = None,
        wall_clock: Callable[[], float] = time.time,
        id_prefix: str = "",
    ) -> None:
        self.registry = registry
        # Put before every id the store makes (a replica's name and a dot, so that a router finds the replica).
        self.id_prefix = id_prefix
        # Every episode of the store is sealed by it (WorkflowEnv's outcome_secret).
        self._outcome_secret = outcome_secret
        self.limits = limits
        self.archive = archive
        self._clock = clock
        self._wall_clock = wall_clock
        self._episodes: OrderedDict[str, StoredEpisode] = OrderedDict()
        # Each client's episodes, least recently used first.
        self._by_client: dict[str, OrderedDict[str, None]] = {}
        # Evicted ids (told "expired"), and retired ones: evicted or finished, never given again.
        self._evicted: OrderedDict[str, None] = OrderedDict()
        self._retired: OrderedDict[str, None] = OrderedDict()
        self._latest_finished: dict[tuple[str, str], str] = {}
        self.default_task_id = registry.task_ids()[0]

    @property
    def outcome_secret(self) -> str | bytes | None:
        """The secret that seals the store's episodes (and the WebSocket batches'), or None."""
        return self._outcome_secret

    def __len__(self) -> int:
        return len(self._episodes)

    def __contains__(self, episode_id: object) -> bool:
        return episode_id in self._episodes

    def now(self) -> float:
        return self._clock()

    def count_of(self, client: str) -> int:
        """How many episodes ``client`` holds."""
        return len(self._by_client.get(client, ()))

    # ---------------------------------------------------------------- episodes

    def start(
        self,
        task_id: str | None = None,
        seed: int | None = None,
        worker_count: int | None = None,
        episode_id: str | None = None,
        client: str = LOCAL_CLIENT,
        reward_mode: str = "shaped",
    ) -> tuple[StoredEpisode, dict[str, Any]]:
        """Start an episode for ``client``; returns it (its ``secret`` included) and its first observation.

        Raises :class:`UnknownTaskError`, ``ValueError`` for parameters the
        task does not accept, or :class:`DuplicateEpisodeError`.
        """
        if episode_id is not None:
            if episode_id in self._episodes:
                raise DuplicateEpisodeError(f"episode_id {episode_id!r} is already in use")
            if episode_id in self._retired:
                raise DuplicateEpisodeError(
                    f"episode_id {episode_id!r} was used before (the episode finished or expired); choose another"
                )
        task_id = task_id or self.default_task_id
        env = WorkflowEnv(registry=self.registry, outcome_secret=self._outcome_secret)
        observation = env.reset(task_id=task_id, seed=seed, worker_count=worker_count, reward_mode=reward_mode)
        now = self._clock()
        self._evict(now, room_for=client)
        episode = StoredEpisode(
            episode_id=episode_id or self.id_prefix + secrets.token_hex(16),
            task_id=task_id,
            env=env,
            last_active_at=now,
            seed=observation.get("seed"),
            secret=secrets.token_urlsafe(24),
            chosen_id=episode_id is not None,
            client=client,
            worker_count=worker_count,
        )
        self._episodes[episode.episode_id] = episode
        self._by_client.setdefault(client, OrderedDict())[episode.episode_id] = None
        self._evicted.pop(episode.episode_id, None)
        return episode, observation

    def get(self, episode_id: str, secret: str | None = None, *, check_owner: bool = False) -> StoredEpisode:
        """The episode with this id, if it exists and has not expired.

        With ``check_owner``, a request carrying ``secret`` (or none) must be
        allowed to use it (:class:`EpisodeForbiddenError` otherwise).
        """
        episode = self._episodes.get(episode_id)
        if episode is None:
            raise EpisodeNotFoundError(episode_id, expired=episode_id in self._evicted)
        if episode.live_sessions == 0 and self._clock() - episode.last_active_at > self.limits.idle_timeout_s:
            self._drop(episode_id)
            raise EpisodeNotFoundError(episode_id, expired=True)
        if check_owner and not episode.owned_by(secret):
            raise EpisodeForbiddenError(episode_id, secret_given=secret is not None)
        return episode

    def is_retired(self, episode_id: str) -> bool:
        """Whether this id was used and is still remembered (stored, evicted or finished)."""
        return episode_id in self._episodes or episode_id in self._retired

    def step(self, episode: StoredEpisode, action: dict[str, Any]) -> dict[str, Any]:
        """Apply one action (a plain mapping for the core) and return the observation.

        A step sent after the episode ended changes nothing and is not counted.
        """
        was_finished = episode.finished
        observation = episode.env.step(action)
        episode.last_active_at = self._clock()
        if not was_finished:
            episode.step_count += 1
        self._episodes.move_to_end(episode.episode_id)
        own = self._by_client.get(episode.client)
        if own is not None and episode.episode_id in own:
            own.move_to_end(episode.episode_id)
        if not was_finished and observation.get("done"):
            self._finish(episode)
        return observation

    def step_once(self, episode: StoredEpisode, action: dict[str, Any], expected_step_count: int) -> dict[str, Any]:
        """An idempotent step: applied only if the episode is at ``expected_step_count``.

        The answer is kept, so a retry of the same step (the episode is one
        further and the last idempotent step expected the same count) gets
        it again without stepping twice. Raises :class:`StepCountMismatchError`
        otherwise. Returns openenv's envelope.
        """
        last = episode.last_reply
        if last is not None and last[0] == expected_step_count:
            # The same step again: it moved the episode one on, or (after the end) changed nothing.
            if episode.step_count == expected_step_count + 1 or episode.finished:
                return last[1]
        if episode.step_count != expected_step_count:
            raise StepCountMismatchError(
                f"episode {episode.episode_id!r} is at step_count {episode.step_count}, not {expected_step_count}; "
                "send the step_count of the latest observation you have"
            )
        reply = envelope(self.step(episode, action), episode.episode_id)
        episode.last_reply = (expected_step_count, reply)
        return reply

    def latest_finished(self, task_id: str, client: str = LOCAL_CLIENT) -> StoredEpisode:
        """The most recently finished episode of a task started by ``client`` that is still stored."""
        if task_id not in self.registry.task_ids():
            raise UnknownTaskError(task_id, self.registry.task_ids())
        episode_id = self._latest_finished.get((task_id, client))
        if episode_id is None or episode_id not in self._episodes:
            raise EpisodeNotFoundError(f"<latest finished episode of {task_id}>", expired=False)
        return self._episodes[episode_id]

    def grade(self, episode: StoredEpisode) -> dict[str, Any]:
        if not episode.finished:
            raise EpisodeNotFinishedError(
                f"episode {episode.episode_id!r} is not finished (step {episode.step_count}); "
                "keep stepping until the observation says done, then grade it"
            )
        return episode.env.grade()

    def _finish(self, episode: StoredEpisode) -> None:
        episode.finished = True
        self._latest_finished[(episode.task_id, episode.client)] = episode.episode_id
        self._remember(self._retired, episode.episode_id)
        if self.archive is not None:
            finished_at = self._wall_clock()
            try:
                episode.archived = self.archive.put_later(lambda: archive_record(episode, finished_at))
            except RuntimeError:  # the archive closed: the server is stopping
                logger.warning("episode %s finished after the archive closed; not archived", episode.episode_id)

    # ---------------------------------------------------------------- bounds

    def evict(self, now: float | None = None) -> int:
        """Drop idle episodes, then the least recently used until the count fits.

        Episodes held by live sessions are skipped. Returns how many were dropped.
        """
        return self._evict(self._clock() if now is None else now, room_for=None)

    def _evict(self, now: float, room_for: str | None) -> int:
        """Drop idle episodes; then make room for one more episode (of ``room_for``, if given).

        Idle ones are found from the oldest activity on, so the scan stops at
        the first episode that is not idle. Then a client at its own bound
        loses its least recently used episode, and a full store loses the
        least recently used episode of the client that holds the most.
        """
        timeout = self.limits.idle_timeout_s
        victims = []
        for episode_id, episode in self._episodes.items():
            if now - episode.last_active_at <= timeout:
                break
            if not episode.live_sessions:
                victims.append(episode_id)
        for episode_id in victims:
            self._drop(episode_id)
        dropped = len(victims)
        if room_for is not None:
            per_client = min(self.limits.max_episodes_per_client, self.limits.max_episodes)
            own = self._by_client.get(room_for)
            while own and len(own) >= per_client and self._drop_oldest_of(room_for):
                dropped += 1
        # Leave room for the episode about to be added.
        while len(self._episodes) > max(self.limits.max_episodes - 1, 0):
            for client in sorted(self._by_client, key=lambda name: len(self._by_client[name]), reverse=True):
                if self._drop_oldest_of(client):
                    dropped += 1
                    break
            else:
                break  # every episode is held by a live session
        return dropped

    def _drop_oldest_of(self, client: str) -> bool:
        """Drop ``client``'s least recently used episode not held by a live session; False if there is none."""
        for episode_id in self._by_client.get(client, ()):
            if not self._episodes[episode_id].live_sessions:
                self._drop(episode_id)
                return True
        return False

    def _drop(self, episode_id: str) -> None:
        episode = self._episodes.pop(episode_id)
        own = self._by_client.get(episode.client)
        if own is not None:
            own.pop(episode_id, None)
            if not own:
                del self._by_client[episode.client]
        key = (episode.task_id, episode.client)
        if self._latest_finished.get(key) == episode_id:
            del self._latest_finished[key]
        self._remember(self._evicted, episode_id)
        self._remember(self._retired, episode_id)

    def _remember(self, ids: OrderedDict[str, None], episode_id: str) -> None:
        ids[episode_id] = None
        ids.move_to_end(episode_id)
        if len(ids) > self.limits.remembered_evictions:
            ids.popitem(last=False)


def archive_record(episode: StoredEpisode, finished_at: float) -> ArchivedEpisode:
    """A finished episode as the archive keeps it (built on the archive's thread: the episode no longer changes).

    When its history was read, the trace and the log are the JSON fragments
    already made for the answers (completed here): the archive's thread then
    builds no dicts and serializes only what no answer did, work that holds
    the interpreter's lock, which the event loop waits for (a flooded
    arena/hard episode: about 40 ms to rebuild its trace as dicts)."""
    core = episode.env.episode
    assert core is not None
    history = episode.history
    if history is not None and history.episode is core:
        history.update()
        trace: list[Any] = list(history.trace)
        events: list[Any] = list(history.events)
    else:
        trace, events = list(core.trace), core.log.records
    return ArchivedEpisode(
        episode_id=episode.episode_id,
        owner=secret_digest(episode.secret),
        client=episode.client,
        chosen_id=episode.chosen_id,
        task_id=episode.task_id,
        seed=episode.seed,
        finished_at=finished_at,
        step_count=episode.step_count,
        grade=episode.env.grade(),
        trace=trace,
        events=events,
        worker_count=episode.worker_count,
        sealed=core.sealed,
    )


def note_ignored_options(payload: dict[str, Any], ignored: list[str]) -> dict[str, Any]:
    """``payload`` (an envelope) saying which reset keywords were ignored, when any were."""
    if ignored:
        payload["observation"]["metadata"] = {"ignored_reset_options": ignored}
    return payload


def envelope(observation: dict[str, Any], episode_id: str, secret: str | None = None) -> dict[str, Any]:
    """openenv's wire envelope: ``{"observation": ..., "reward": ..., "done": ...}``.

    A reset's envelope also carries the new episode's ``episode_secret``
    (beside the observation, so that it never reaches a policy's prompt).

    The observation goes out without reward and done (they move up a level,
    as openenv's clients expect) and with its ``episode_id``. It is a new
    dict: the core keeps the one it returned as the episode's latest
    observation, so that one is not touched.
    """
    wire = {key: value for key, value in observation.items() if key != "reward" and key != "done"}
    wire["episode_id"] = episode_id
    reply = {"observation": wire, "reward": observation.get("reward"), "done": observation.get("done", False)}
    if secret is not None:
        reply["episode_secret"] = secret
    return reply


class WorkflowEnvironment(Environment[WorkflowAction, WorkflowObservation, WorkflowState]):
    """openenv's ``Environment`` for one session: its current episode lives in the store.

    ``reset`` starts a new episode (the previous one stays in the store for
    grading until it is evicted); ``step`` continues the current one.
    ``reset_payload`` and ``step_payload`` are the fast paths the server's own
    routes use: they return openenv's wire envelope as plain data, built once.
    """

    SUPPORTS_CONCURRENT_SESSIONS = True

    def __init__(
        self, store: EpisodeStore, metadata: EnvironmentMetadata | None = None, client: str = LOCAL_CLIENT
    ) -> None:
        super().__init__()
        self._store = store
        self._metadata = metadata
        self._episode: StoredEpisode | None = None
        # Whom this session's episodes are counted against (the connection's address).
        self.client = client

    @property
    def episode(self) -> StoredEpisode | None:
        return self._episode

    # ---------------------------------------------------------------- fast paths

    def reset_payload(
        self,
        task_id: str | None = None,
        seed: int | None = None,
        worker_count: int | None = None,
        episode_id: str | None = None,
        reward_mode: str = "shaped",
    ) -> dict[str, Any]:
        episode, observation = self._store.start(
            task_id, seed, worker_count, episode_id, client=self.client, reward_mode=reward_mode
        )
        self._release()
        episode.live_sessions += 1
        self._episode = episode
        return envelope(observation, episode.episode_id, episode.secret)

    def step_payload(self, action: WorkflowAction) -> dict[str, Any]:
        if self._episode is None:
            raise RuntimeError("no episode yet: send a reset first")
        episode = self._episode
        return envelope(self._store.step(episode, action.to_core()), episode.episode_id)

    def state_payload(self, page: HistoryPage | None = None) -> dict[str, Any]:
        """The current episode's state: with ``page``, that page of its history (as the wire carries it)."""
        if self._episode is None:
            raise RuntimeError("no episode yet: send a reset first")
        return episode_state(self._episode, page)

    # ---------------------------------------------------------------- openenv API

    def reset(
        self,
        seed: int | None = None,
        episode_id: str | None = None,
        task_id: str | None = None,
        worker_count: int | None = None,
        reward_mode: str = "shaped",
        **kwargs: Any,
    ) -> WorkflowObservation:
        if kwargs:
            raise TypeError(f"unexpected reset parameters: {', '.join(sorted(kwargs))}")
        return observation_model(self.reset_payload(task_id, seed, worker_count, episode_id, reward_mode=reward_mode))

    async def reset_async(
        self,
        seed: int | None = None,
        episode_id: str | None = None,
        task_id: str | None = None,
        worker_count: int | None = None,
        reward_mode: str = "shaped",
        **kwargs: Any,
    ) -> WorkflowObservation:
        # Inline on the event loop, on purpose: see the module docstring.
        return self.reset(
            seed=seed,
            episode_id=episode_id,
            task_id=task_id,
            worker_count=worker_count,
            reward_mode=reward_mode,
            **kwargs,
        )

    def step(self, action: WorkflowAction, timeout_s: float | None = None, **kwargs: Any) -> WorkflowObservation:
        return observation_model(self.step_payload(action))

    async def step_async(
        self, action: WorkflowAction, timeout_s: float | None = None, **kwargs: Any
    ) -> WorkflowObservation:
        return self.step(action, timeout_s=timeout_s, **kwargs)

    @property
    def state(self) -> WorkflowState:
        if self._episode is None:
            return WorkflowState()
        return WorkflowState.model_construct(**self.state_payload())

    def get_metadata(self) -> EnvironmentMetadata:
        if self._metadata is not None:
            return self._metadata
        return EnvironmentMetadata(name="workflow_orchestrator", description="DAG workflow orchestration")

    def close(self) -> None:
        self._release()

    # ---------------------------------------------------------------- openenv's task API

    def list_splits(self) -> list[dict[str, Any]]:
        return self._catalogue().splits()

    def list_tasks(self, split: str) -> list[dict[str, Any]]:
        return self._catalogue().preview(split)

    def num_tasks(self, split: str) -> int:
        return self._catalogue().size(split)

    def get_task(self, split: str, index: int) -> dict[str, Any]:
        return self._catalogue().task(split, index)

    def get_task_range(self, split: str, start: int | None = None, stop: int | None = None) -> list[dict[str, Any]]:
        return self._catalogue().task_range(split, start, stop)

    def _catalogue(self) -> TaskCatalogue:
        return TaskCatalogue(self._store.registry)

    def _release(self) -> None:
        if self._episode is not None:
            self._episode.live_sessions -= 1
            self._episode.last_active_at = self._store.now()
            self._episode = None


def observation_model(wire: dict[str, Any]) -> WorkflowObservation:
    """The typed observation for openenv's in-process API, built without re-validation."""
    fields = {**wire["observation"], "reward": wire["reward"], "done": wire["done"]}
    if fields.get("grade") is not None:
        fields["grade"] = GradeResult.model_construct(**fields["grade"])
    return WorkflowObservation.model_construct(**fields)


def episode_state(episode: StoredEpisode, page: HistoryPage | None = None) -> dict[str, Any]:
    """The state of an episode as plain data, with its id. With ``page``, its
    ``trace`` and ``events`` are that page of its history (JSON fragments, kept
    from read to read; see :class:`JsonHistory`), and ``history`` says which;
    without, the whole history as dicts (for openenv's in-process API)."""
    if page is not None:
        state = episode.env.state(history=False)
        state.update(episode.serialized_history().page(page))
    else:
        state = episode.env.state()
    state["episode_id"] = episode.episode_id
    state.setdefault("step_count", episode.step_count)
    state.setdefault("task_id", episode.task_id)
    state.setdefault("done", episode.env.done)
    return state
