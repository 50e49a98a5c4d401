"""What one browser session of the dashboard can do, without any Gradio.

A :class:`DashboardSession` is the per-browser state (kept by the page's
session hash in :class:`DashboardSessions`): the id of its live episode, its built-in policy,
and the replay it is looking at. The episode itself lives in the server's
episode store, like every other episode, so it has an id that ``GET
/episodes/{id}`` and ``POST /grader`` understand, and any finished episode in
the store (played over HTTP, WebSocket, or here) can be replayed here.

:class:`DashboardController` does the work: start, act, let a policy act,
load a replay and move through it. Every call returns a :class:`Snapshot`,
plain data that :mod:`.views` draws.

The controller touches the store, which the server only ever uses on its
event loop thread; the Gradio handlers that call it are ``async`` so that
Gradio runs them on that same thread.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import secrets
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import orjson

from workflow_orchestrator.server.archive import ArchivedEpisode
from workflow_orchestrator.server.core import Episode, build_observation, grade_episode, new_episode
from workflow_orchestrator.server.core.canvas import CanvasEpisode, SimulatedExecutor
from workflow_orchestrator.server.core.compiled import CompiledTask
from workflow_orchestrator.server.core.outcomes import outcome_secret as outcome_secret_bytes
from workflow_orchestrator.server.core.policies import POLICIES, Policy, make_policy
from workflow_orchestrator.server.environment import (
    EpisodeNotFoundError,
    EpisodeStore,
    StoredEpisode,
    archived_owned_by,
)
from workflow_orchestrator.server.inprocess import WorkflowEnv
from workflow_orchestrator.server.tasks import UnknownTaskError
from workflow_orchestrator.vocabulary import ActionTypeName

from .views import describe_canvas_action

# The order in which action kinds are offered in the form.
ACTION_KINDS: tuple[ActionTypeName, ...] = ("delegate", "retry", "dispatch", "abort", "wait", "synthesize")
POLICY_NAMES = tuple(POLICIES)
# A replay re-simulates the episode; this bounds the work one request can ask for.
MAX_REPLAY_STEPS = 5000
# Pages whose sessions are kept at once (see DashboardSessions).
MAX_SESSIONS = 1024
# The client the store counts the dashboard's episodes against.
DASHBOARD_CLIENT = "dashboard"


# --------------------------------------------------------------------------- tasks


@dataclass(frozen=True, slots=True)
class TaskOption:
    """One entry of the task picker: a scenario, or a family of generated tasks with presets."""

    key: str  # the scenario's task id, or the family prefix
    label: str
    presets: tuple[str, ...]  # empty for a scenario
    generated: bool
    canonical_seed: int = 0  # the seed the seed field starts at


def task_options(tasks: Sequence[Mapping[str, Any]]) -> list[TaskOption]:
    """Group the registry's task list: ``arena/easy`` and ``arena/hard`` become one family with two presets."""
    options: list[TaskOption] = []
    families: dict[str, list[str]] = {}
    for task in tasks:
        task_id = str(task["task_id"])
        prefix, slash, variant = task_id.partition("/")
        if slash:
            if prefix not in families:
                families[prefix] = []
                options.append(TaskOption(prefix, f"{prefix} (generated)", (), True))
            families[prefix].append(variant)
        else:
            title = task.get("title")
            seed = (task.get("parameters") or {}).get("canonical_seed")
            options.append(
                TaskOption(
                    task_id,
                    f"{task_id} — {title}" if title else task_id,
                    (),
                    False,
                    int(seed) if isinstance(seed, int) else 0,
                )
            )
    return [TaskOption(o.key, o.label, tuple(families[o.key]), True) if o.generated else o for o in options]


def resolve_task_id(option: TaskOption, preset: str | None) -> str:
    if not option.generated:
        return option.key
    chosen = preset if preset in option.presets else option.presets[0]
    return f"{option.key}/{chosen}"


# --------------------------------------------------------------------------- the action form


@dataclass(frozen=True, slots=True)
class ActionMenu:
    """The legal actions of an observation, arranged for a form: kind, then subtask, then agent."""

    kinds: tuple[str, ...]
    subtasks: dict[str, tuple[str, ...]]  # kind -> legal subtask ids
    agents: dict[tuple[str, str], tuple[str, ...]]  # (kind, subtask) -> legal agents
    pairs: tuple[tuple[str, str, str], ...]  # (kind, subtask, agent) that a dispatch may combine
    free_slots: int
    # An arena's dispatch names subtasks only (any free worker takes each): the ones it may name now.
    anywhere: tuple[str, ...] = ()
    # A canvas task's edits by kind: (label, value) choices, each value one of its legal actions as JSON.
    edits: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    canvas: bool = False

    def subtasks_for(self, kind: str | None) -> tuple[str, ...]:
        return self.subtasks.get(kind or "", ())

    def agents_for(self, kind: str | None, subtask: str | None) -> tuple[str, ...]:
        return self.agents.get((kind or "", subtask or ""), ())


EMPTY_MENU = ActionMenu((), {}, {}, (), 0)


def action_menu(observation: Mapping[str, Any] | None) -> ActionMenu:
    if not observation or observation.get("done"):
        return EMPTY_MENU
    if isinstance(observation.get("canvas"), Mapping):
        return canvas_menu(observation)
    subtasks: dict[str, list[str]] = {}
    agents: dict[tuple[str, str], list[str]] = {}
    pairs: list[tuple[str, str, str]] = []
    simple: set[str] = set()
    anywhere: list[str] = []
    for action in observation.get("legal_actions") or ():
        kind = str(action.get("action_type"))
        if kind == "dispatch" and action.get("task_ids"):
            anywhere.extend(str(task) for task in action["task_ids"] if str(task) not in anywhere)
            continue
        subtask = action.get("subtask_id")
        agent = action.get("agent_name")
        if subtask is None:
            simple.add(kind)
            continue
        targets = subtasks.setdefault(kind, [])
        if subtask not in targets:
            targets.append(subtask)
        if agent is not None:
            agents.setdefault((kind, subtask), []).append(agent)
            if kind in ("delegate", "retry"):
                pairs.append((kind, subtask, agent))
    free = int(observation.get("capacity") or 0) - int(observation.get("active_count") or 0)
    offered = set(subtasks) | simple
    if (free >= 2 and _two_disjoint(pairs)) or (free >= 1 and anywhere):
        offered.add("dispatch")
    return ActionMenu(
        kinds=tuple(kind for kind in ACTION_KINDS if kind in offered),
        subtasks={kind: tuple(ids) for kind, ids in subtasks.items()},
        agents={key: tuple(names) for key, names in agents.items()},
        pairs=tuple(pairs),
        free_slots=max(free, 0),
        anywhere=tuple(anywhere),
    )


# The order in which a canvas task's actions are offered.
CANVAS_KINDS: tuple[str, ...] = ("add", "delete", "modify", "set_prompt", "execute", "finish")


def canvas_menu(observation: Mapping[str, Any]) -> ActionMenu:
    """A canvas task's legal actions as a form: the kind, then one of that kind's legal edits."""
    nodes = {node.get("id"): str(node.get("dsl")) for node in observation["canvas"].get("nodes") or ()}
    edits: dict[str, list[tuple[str, str]]] = {}
    simple: set[str] = set()
    for action in observation.get("legal_actions") or ():
        kind = str(action.get("action_type"))
        if kind in ("execute", "finish"):
            simple.add(kind)
        elif kind in CANVAS_KINDS:
            edits.setdefault(kind, []).append((edit_label(action, nodes), edit_value(action)))
    return ActionMenu(
        kinds=tuple(kind for kind in CANVAS_KINDS if kind in edits or kind in simple),
        subtasks={},
        agents={},
        pairs=(),
        free_slots=0,
        edits={kind: tuple(choices) for kind, choices in edits.items()},
        canvas=True,
    )


def edit_value(action: Mapping[str, Any]) -> str:
    """The form value of one legal canvas edit: the action itself, as JSON."""
    return json.dumps(action, sort_keys=True)


def edit_label(action: Mapping[str, Any], nodes: Mapping[Any, str]) -> str:
    """One legal canvas edit in words: what it adds, or which node it changes and how."""
    kind = action.get("action_type")
    if kind == "add":
        return describe_canvas_action(action).removeprefix("add ")
    target = action.get("target")
    node = f"node {target}: {nodes.get(target, '?')}"
    if kind == "modify":
        return f"{node} → {action.get('operator') or ', '.join(action.get('operators') or ())}"
    if kind == "set_prompt":
        return f"{node} → prompt {action.get('prompt')}"
    return node


def _two_disjoint(pairs: Sequence[tuple[str, str, str]]) -> bool:
    for index, (_, subtask, agent) in enumerate(pairs):
        for _, other_subtask, other_agent in pairs[index + 1 :]:
            if subtask != other_subtask and agent != other_agent:
                return True
    return False


def pair_value(subtask: str, agent: str) -> str:
    """The form value of one dispatch assignment (JSON, so any id survives the round trip)."""
    return json.dumps([subtask, agent])


def anywhere_value(subtask: str) -> str:
    """The form value of one subtask an arena's dispatch sends to any free worker."""
    return json.dumps([subtask])


def anywhere_label(subtask: str) -> str:
    return f"{subtask} → any free worker"


def pair_label(kind: str, subtask: str, agent: str) -> str:
    return f"{subtask} → {agent}" + (" (retry)" if kind == "retry" else "")


class FormError(ValueError):
    """The form does not describe a legal action; the message says what to change."""


def build_action(
    menu: ActionMenu,
    kind: str | None,
    subtask: str | None,
    agent: str | None,
    assignments: Sequence[str] | None,
    answer: str | None = None,
) -> dict[str, Any]:
    """The action the form describes, checked against the legal actions of now.

    For a canvas task, ``subtask`` is the chosen edit (its form value) and
    ``answer`` the answer to finish with (empty: the last execution's).
    """
    if not menu.kinds:
        raise FormError("No action is possible now: the episode is over, or there is no episode. Press Reset.")
    if kind not in menu.kinds:
        raise FormError(f"Choose an action kind among: {', '.join(menu.kinds)}.")
    if menu.canvas:
        return _canvas_action(menu, kind, subtask, answer)
    if kind in ("wait", "synthesize"):
        return {"action_type": kind}
    if kind == "dispatch":
        return _dispatch_action(menu, assignments or ())
    if subtask not in menu.subtasks_for(kind):
        raise FormError(f"Choose a subtask that can be given a {kind} now.")
    if kind == "abort":
        return {"action_type": "abort", "subtask_id": subtask}
    if agent not in menu.agents_for(kind, subtask):
        raise FormError(f"Choose an idle agent that can take {subtask}.")
    return {"action_type": kind, "subtask_id": subtask, "agent_name": agent}


def _canvas_action(menu: ActionMenu, kind: str, chosen: str | None, answer: str | None) -> dict[str, Any]:
    if kind == "execute":
        return {"action_type": "execute"}
    if kind == "finish":
        given = (answer or "").strip()
        return {"action_type": "finish", **({"answer": given} if given else {})}
    if chosen not in {value for _, value in menu.edits.get(kind, ())}:
        raise FormError(f"Choose one of the {kind.replace('_', ' ')} edits offered now.")
    action: dict[str, Any] = json.loads(chosen)
    return action


def _dispatch_action(menu: ActionMenu, chosen: Sequence[str]) -> dict[str, Any]:
    if menu.anywhere:
        return _dispatch_anywhere(menu, chosen)
    legal = {(subtask, agent) for _, subtask, agent in menu.pairs}
    assignments: list[dict[str, str]] = []
    for value in chosen:
        try:
            subtask, agent = json.loads(value)
        except (ValueError, TypeError):
            raise FormError("An assignment of the dispatch is not one of the offered ones.") from None
        if (subtask, agent) not in legal:
            raise FormError(f"{subtask} → {agent} is no longer possible; choose again.")
        assignments.append({"subtask_id": subtask, "agent_name": agent})
    if len(assignments) < 1:
        raise FormError("Tick at least one assignment for the dispatch.")
    subtasks = [a["subtask_id"] for a in assignments]
    agents = [a["agent_name"] for a in assignments]
    if len(set(subtasks)) != len(subtasks):
        raise FormError("A dispatch gives each subtask to one agent only.")
    if len(set(agents)) != len(agents):
        raise FormError("A dispatch gives each agent one subtask only.")
    if len(assignments) > menu.free_slots:
        raise FormError(f"Only {menu.free_slots} slot(s) are free: tick at most {menu.free_slots}.")
    return {"action_type": "dispatch", "assignments": assignments}


def _dispatch_anywhere(menu: ActionMenu, chosen: Sequence[str]) -> dict[str, Any]:
    task_ids: list[str] = []
    for value in chosen:
        try:
            (subtask,) = json.loads(value)
        except (ValueError, TypeError):
            raise FormError("A subtask of the dispatch is not one of the offered ones.") from None
        if subtask not in menu.anywhere:
            raise FormError(f"{subtask} can no longer be dispatched; choose again.")
        if subtask in task_ids:
            raise FormError("A dispatch names each subtask once.")
        task_ids.append(subtask)
    if not task_ids:
        raise FormError("Tick at least one subtask for the dispatch.")
    if len(task_ids) > menu.free_slots:
        raise FormError(f"Only {menu.free_slots} worker(s) are free: tick at most {menu.free_slots}.")
    return {"action_type": "dispatch", "task_ids": task_ids}


# --------------------------------------------------------------------------- sessions and snapshots


@dataclass(slots=True)
class Replay:
    """A finished episode re-simulated from its task, seed and action trace."""

    source_id: str
    compiled: CompiledTask
    seed: int
    actions: list[Any]
    verified: bool  # the re-simulation reproduced the stored event log exactly
    position: int = 0
    episode: Episode | None = None
    observation: dict[str, Any] = field(default_factory=dict)
    # A sealed source's outcome key (not its secret), so that the replay rolls the same outcomes.
    sealed_key: int | None = None
    # The source's episode_secret when this browser knows it (it goes into the links to the view).
    secret: str | None = None

    def new_episode(self) -> Episode:
        episode: Episode = new_episode(self.compiled, self.seed)
        if self.sealed_key is not None:
            sealed_like(episode, self.sealed_key)
        return episode


@dataclass(slots=True)
class DashboardSession:
    """Everything one browser session holds."""

    episode_id: str | None = None
    policy_name: str = "heuristic"
    policy: Policy | None = None
    replay: Replay | None = None
    # Another episode in the store, watched as it is played (by HTTP, WebSocket or another browser).
    watch_id: str | None = None
    # The watched episode's change key when the page was last drawn.
    drawn: tuple[Any, ...] = ()
    # What the page was last sent, by output: the pictures and tables the browser already shows
    # (a picture by its picture_key).
    sent: dict[int, Any] = field(default_factory=dict)
    # Episodes this browser may see, by id, with the credential that showed it may: the
    # secret of every episode it started, and what it gave to open another one.
    granted: dict[str, str] = field(default_factory=dict)
    # What the page's own script gives to the dashboard's JSON routes to name this session (see
    # DashboardSessions.by_key): random, known only to this page.
    key: str = field(default_factory=lambda: secrets.token_urlsafe(18))


class DashboardSessions:
    """Every open page's :class:`DashboardSession`, by Gradio's session hash.

    Kept here rather than in a ``gr.State``, which Gradio would take as an
    input and an output of every event (its value copied into the session's
    config each time). Bounded: past ``limit`` pages, the least recently used
    page's session is dropped (its episode stays in the store; that page
    starts afresh), and a page that closes drops its own.
    """

    def __init__(self, limit: int = MAX_SESSIONS) -> None:
        self.limit = limit
        self._sessions: OrderedDict[str, DashboardSession] = OrderedDict()
        # The same sessions by their own key (DashboardSession.key), for the page's JSON routes.
        self._keys: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def get(self, key: str, sent: Sequence[Any] = ()) -> DashboardSession:
        """The session of page ``key``, new (with ``sent`` as what its page shows) if it has none."""
        session = self._sessions.get(key)
        if session is not None:
            self._sessions.move_to_end(key)
            return session
        session = DashboardSession(sent={index: picture_key(value) for index, value in enumerate(sent)})
        if key:  # a call without a page (no session hash) keeps nothing
            self._sessions[key] = session
            self._keys[session.key] = key
            while len(self._sessions) > self.limit:
                _, evicted = self._sessions.popitem(last=False)
                self._keys.pop(evicted.key, None)
        return session

    def by_key(self, key: str) -> DashboardSession | None:
        """The session whose own key is ``key`` (None for any other string), as the most recently used."""
        page = self._keys.get(key)
        if page is None:
            return None
        self._sessions.move_to_end(page)
        return self._sessions[page]

    def drop(self, key: str) -> None:
        session = self._sessions.pop(key, None)
        if session is not None:
            self._keys.pop(session.key, None)


def picture_key(picture: Any) -> Any:
    """What a session remembers of a picture it sent: a hash of the markup, not the markup."""
    return hash(picture) if isinstance(picture, str) else picture


@dataclass(slots=True)
class Snapshot:
    """What the page shows, as plain data."""

    mode: str  # "live" | "watch" | "replay" | "empty"
    episode_id: str | None
    observation: dict[str, Any]
    records: list[dict[str, Any]]
    trace: list[dict[str, Any]]
    rewards: list[float]
    grade: dict[str, Any] | None
    notice: str = ""
    replay_position: tuple[int, int] | None = None
    task: Mapping[str, Any] = field(default_factory=dict)  # the registry's entry: title, description
    # The episode's secret, when the browser knows it: the links to the view carry it.
    secret: str | None = None

    @property
    def share(self) -> str:
        """A relative link that opens this view of this episode.

        The secret travels in the fragment (``#secret=``), which a browser
        never sends to a server, so it stays out of logs and referrers.
        """
        if self.episode_id is None:
            return ""
        link = f"?episode={quote(self.episode_id, safe='')}"
        if self.replay_position is not None:
            link += f"&step={self.replay_position[0]}"
        if self.secret:
            link += f"#secret={quote(self.secret, safe='')}"
        return link

    @property
    def export(self) -> str:
        """A relative link that downloads this episode as JSON (see :func:`export_episode`)."""
        if self.episode_id is None:
            return ""
        link = f"export/{quote(self.episode_id, safe='')}.json"
        return link + (f"?secret={quote(self.secret, safe='')}" if self.secret else "")

    @property
    def menu(self) -> ActionMenu:
        return action_menu(self.observation) if self.mode == "live" else EMPTY_MENU


def refusal(episode_id: str, credential: str | None) -> str:
    """Why an episode is not shown: the page says it instead of anything of that episode."""
    if credential is None:
        return (
            f"Episode {episode_id} is not this browser's: to watch, replay, compare or export it, give its "
            "episode_secret (POST /reset returned it beside the id) or the server's token, in the field "
            "beside the id or in the link (#secret=...)."
        )
    return (
        f"The secret given does not open episode {episode_id}: it is neither its episode_secret nor the server's token."
    )


class DashboardController:
    """The dashboard's operations on the server's episode store.

    Who may see an episode: the browser that started it, and whoever gives
    its ``episode_secret`` (or the server's token, when the server has one);
    the same rule for a running episode, a finished one in the store and an
    archived one, for watching, replaying, comparing and exporting.
    """

    def __init__(self, store: EpisodeStore, token: str | None = None) -> None:
        self.store = store
        self.token = token or None
        tasks = store.registry.list_tasks()
        self.options = task_options(tasks)
        self.tasks = {str(task["task_id"]): task for task in tasks}

    def option(self, key: str | None) -> TaskOption:
        for option in self.options:
            if option.key == key:
                return option
        return self.options[0]

    def opening(self, task_key: str | None, preset: str | None = None) -> Snapshot:
        """What a new episode of a task looks like before its first step, without starting one in the store.

        The page arrives with these pictures already drawn; a browser's own
        episode, started when the page loads, looks the same at step 0 (the
        pictures show no episode id), so only what differs is sent then.
        """
        option = self.option(task_key)
        env = WorkflowEnv(registry=self.store.registry)
        try:
            observation = env.reset(task_id=resolve_task_id(option, preset))
        except (UnknownTaskError, ValueError):
            return Snapshot("empty", None, {}, [], [], [], None)
        core = env.episode
        assert core is not None
        return Snapshot("live", None, observation, core.log.records, core.trace, list(core.rewards), None)

    # ---------------------------------------------------------------- live episodes

    def start(
        self,
        session: DashboardSession,
        task_key: str | None,
        preset: str | None,
        seed: int | None,
        worker_count: int | None,
    ) -> Snapshot:
        option = self.option(task_key)
        task_id = resolve_task_id(option, preset)
        try:
            episode, _ = self.store.start(
                task_id, seed, worker_count if option.generated else None, client=DASHBOARD_CLIENT
            )
        except (UnknownTaskError, ValueError) as exc:
            return self.snapshot(session, notice=f"Could not start {task_id}: {exc}")
        session.episode_id = episode.episode_id
        session.granted[episode.episode_id] = episode.secret
        session.replay, session.watch_id = None, None
        session.policy = make_policy(session.policy_name, seed=episode.seed or 0)
        return self.snapshot(session)

    def act(self, session: DashboardSession, action: Mapping[str, Any]) -> Snapshot:
        stored, notice = self._live(session)
        if stored is None:
            return self.snapshot(session, notice=notice)
        if stored.finished:
            return self.snapshot(session, notice="This episode is over; press Reset for a new one.")
        self.store.step(stored, dict(action))
        return self.snapshot(session)

    def policy_step(self, session: DashboardSession, policy_name: str | None) -> Snapshot:
        stored, notice = self._live(session)
        if stored is None:
            return self.snapshot(session, notice=notice)
        if stored.finished:
            return self.snapshot(session, notice="This episode is over; press Reset for a new one.")
        name = policy_name if policy_name in POLICIES else session.policy_name
        if session.policy is None or name != session.policy_name:
            session.policy_name = name
            session.policy = make_policy(name, seed=stored.seed or 0)
        action = session.policy.act(stored.env.observation)
        self.store.step(stored, action)
        return self.snapshot(session)

    def _live(self, session: DashboardSession) -> tuple[Any, str]:
        if session.episode_id is None:
            return None, "No episode yet: pick a task and press Reset."
        try:
            return self.store.get(session.episode_id), ""
        except EpisodeNotFoundError as exc:
            session.episode_id = None
            return None, (
                f"Episode {exc.episode_id} is no longer on the server (idle too long, or evicted "
                "to keep the store bounded). Press Reset to start another."
            )

    def is_finished(self, session: DashboardSession) -> bool:
        stored, _ = self._live(session)
        return stored is None or stored.finished

    # ---------------------------------------------------------------- who may see what

    def is_token(self, credential: str | None) -> bool:
        return bool(self.token and credential) and hmac.compare_digest(
            str(credential).encode(), str(self.token).encode()
        )

    def credential_for(self, session: DashboardSession, episode_id: str, given: str | None) -> str | None:
        """What this browser offers for an episode: the credential given now, or the one that opened it before."""
        given = (given or "").strip() or None
        return given if given is not None else session.granted.get(episode_id)

    def may_see(self, session: DashboardSession, stored: StoredEpisode, given: str | None) -> str | None:
        """None when ``session`` may see ``stored``; otherwise why not, in words."""
        credential = self.credential_for(session, stored.episode_id, given)
        if credential is not None and (self.is_token(credential) or stored.owned_by(credential)):
            session.granted[stored.episode_id] = credential
            return None
        return refusal(stored.episode_id, credential)

    def may_see_archived(self, session: DashboardSession, record: ArchivedEpisode, given: str | None) -> str | None:
        """:meth:`may_see` for an episode that is in the archive only."""
        credential = self.credential_for(session, record.episode_id, given)
        if credential is not None and (self.is_token(credential) or archived_owned_by(record, credential)):
            session.granted[record.episode_id] = credential
            return None
        return refusal(record.episode_id, credential)

    def refuse(self, session: DashboardSession, why: str) -> Snapshot:
        """The browser's own view with ``why``: nothing of the episode it asked for."""
        session.replay, session.watch_id = None, None
        return self.snapshot(session, notice=why)

    # ---------------------------------------------------------------- other episodes

    def open_episode(
        self, session: DashboardSession, episode_id: str | None, step: int | None = None, secret: str | None = None
    ) -> Snapshot:
        """Show any episode of the store by its id: a running one live, a finished one as a replay.

        An episode played over HTTP, WebSocket or in another browser is
        watched as it goes on (:meth:`change_key` says when to redraw); once
        finished it can be replayed step by step. The session's own episode
        is its live view; any other needs ``secret`` (see :meth:`may_see`).
        """
        wanted = (episode_id or "").strip()
        if not wanted:
            return self.snapshot(session, notice="Give the id of an episode to watch or replay.")
        if wanted == session.episode_id:
            session.replay, session.watch_id = None, None
            return self.snapshot(session)
        try:
            stored = self.store.get(wanted)
        except EpisodeNotFoundError as exc:
            return self.snapshot(session, notice=str(exc))
        why = self.may_see(session, stored, secret)
        if why is not None:
            return self.refuse(session, why)
        if stored.finished:
            snapshot = self.load_replay(session, wanted, secret)
            if session.replay is not None and session.replay.source_id == wanted:
                session.watch_id = None
                if step is not None:
                    return self.seek(session, step)
            return snapshot
        session.replay, session.watch_id = None, wanted
        return self.snapshot(
            session, notice=f"Watching episode {wanted} as it is played; it redraws after every step it takes."
        )

    def change_key(self, session: DashboardSession) -> tuple[Any, ...]:
        """Changes whenever the watched episode takes a step: a cheap check before a redraw."""
        if session.watch_id is None:
            return ()
        try:
            stored = self.store.get(session.watch_id)
        except EpisodeNotFoundError:
            return ("gone", session.watch_id)
        return (stored.episode_id, stored.step_count, stored.finished)

    # ---------------------------------------------------------------- replays

    async def open_episode_async(
        self, session: DashboardSession, episode_id: str | None, step: int | None = None, secret: str | None = None
    ) -> Snapshot:
        """:meth:`open_episode` off the event loop, and from the archive for a finished episode that left the store."""
        wanted = (episode_id or "").strip()
        archive = self.store.archive
        if wanted and archive is not None and wanted not in self.store:
            record = await archive.get(wanted)
            if record is not None:
                snapshot = await asyncio.to_thread(self.load_archived_replay, session, record, secret)
                if step is not None and session.replay is not None and session.replay.source_id == wanted:
                    return await asyncio.to_thread(self.seek, session, step)
                return snapshot
        return await asyncio.to_thread(self.open_episode, session, episode_id, step, secret)

    async def load_replay_async(
        self, session: DashboardSession, episode_id: str | None, secret: str | None = None
    ) -> Snapshot:
        """:meth:`load_replay`, reading an episode that left the store from the archive (off the event loop)."""
        wanted = (episode_id or "").strip()
        archive = self.store.archive
        if wanted and archive is not None and wanted not in self.store:
            record = await archive.get(wanted)
            if record is not None:
                return await asyncio.to_thread(self.load_archived_replay, session, record, secret)
        # Re-simulating the episode takes time: in a worker thread, off the event loop.
        return await asyncio.to_thread(self.load_replay, session, episode_id, secret)

    def load_archived_replay(
        self, session: DashboardSession, record: ArchivedEpisode, secret: str | None = None
    ) -> Snapshot:
        """A replay of an archived episode: its task rebuilt from its id, seed and worker count."""
        wanted = record.episode_id
        why = self.may_see_archived(session, record, secret)
        if why is not None:
            return self.refuse(session, why)
        granted = session.granted[wanted]
        actions = [entry["action"] for entry in record.trace]
        if len(actions) > MAX_REPLAY_STEPS:
            return self.snapshot(
                session, notice=f"Episode {wanted} has {len(actions)} steps; replays are limited to {MAX_REPLAY_STEPS}."
            )
        try:
            start = archived_start(self.store, record)
        except (UnknownTaskError, ValueError) as exc:
            return self.snapshot(session, notice=f"Episode {wanted} cannot be replayed here: {exc}")
        replay = Replay(wanted, start.compiled, start.seed, actions, verified=False)
        if start.sealed:
            replay.sealed_key = start.seed_key
        # The archive keeps a digest of the secret: the link can carry the credential only if it is the secret.
        replay.secret = granted if archived_owned_by(record, granted) else None
        replayed = self._replay_to(replay, len(actions))
        # The archive keeps the log as JSON: compare it as JSON.
        replay.verified = orjson.loads(orjson.dumps(replayed.log.records)) == record.events
        session.replay, session.watch_id = replay, None
        self._seek(replay, 0)
        return self.snapshot(session)

    def load_replay(self, session: DashboardSession, episode_id: str | None, secret: str | None = None) -> Snapshot:
        wanted = (episode_id or "").strip()
        if not wanted:
            return self.snapshot(session, notice="Give the id of a finished episode to replay.")
        try:
            stored = self.store.get(wanted)
        except EpisodeNotFoundError as exc:
            return self.snapshot(session, notice=str(exc))
        why = self.may_see(session, stored, secret)
        if why is not None:
            return self.refuse(session, why)
        source = stored.env.episode
        if source is None or not stored.finished:
            return self.snapshot(
                session,
                notice=f"Episode {wanted} is not finished yet (step {stored.step_count}); "
                "only finished episodes can be replayed.",
            )
        actions = [entry["action"] for entry in source.trace]
        if len(actions) > MAX_REPLAY_STEPS:
            return self.snapshot(
                session, notice=f"Episode {wanted} has {len(actions)} steps; replays are limited to {MAX_REPLAY_STEPS}."
            )
        replay = Replay(wanted, source.compiled, source.seed, actions, verified=False, secret=stored.secret)
        if source.sealed:
            replay.sealed_key = source.seed_key
        replayed = self._replay_to(replay, len(actions))
        replay.verified = replayed.log.digest() == source.log.digest()
        session.replay, session.watch_id = replay, None
        self._seek(replay, 0)
        return self.snapshot(session)

    def seek(self, session: DashboardSession, position: int) -> Snapshot:
        if session.replay is None:
            return self.snapshot(session, notice="Load a replay first.")
        self._seek(session.replay, position)
        return self.snapshot(session)

    def leave_replay(self, session: DashboardSession) -> Snapshot:
        session.replay, session.watch_id = None, None
        return self.snapshot(session)

    def _replay_to(self, replay: Replay, position: int) -> Episode:
        episode = replay.new_episode()
        for action in replay.actions[:position]:
            episode.step(action)
        return episode

    def _seek(self, replay: Replay, position: int) -> None:
        position = max(0, min(int(position), len(replay.actions)))
        # Forward moves continue the replayed episode; backward ones start over
        # (a step is microseconds, and an episode cannot be stepped backwards).
        if replay.episode is None or position < replay.position:
            replay.episode = replay.new_episode()
            replay.position = 0
        for action in replay.actions[replay.position : position]:
            replay.episode.step(action)
        replay.position = position
        replay.observation = build_observation(replay.episode)

    def compare(
        self, session: DashboardSession, first_id: str | None, second: str | None, secret: str | None = None
    ) -> Comparison | str:
        """:func:`compare_episodes` on episodes this browser may see (its own, or opened with their secret)."""
        return self._compare(session, first_id, second, secret, {})

    async def compare_async(
        self, session: DashboardSession, first_id: str | None, second: str | None, secret: str | None = None
    ) -> Comparison | str:
        """:meth:`compare`, reading an episode that left the store from the archive; off the event loop."""
        archived: dict[str, ArchivedEpisode] = {}
        archive = self.store.archive
        if archive is not None:
            for wanted in {(first_id or "").strip(), (second or "").strip()} - {""}:
                if wanted not in POLICIES and wanted not in self.store:
                    record = await archive.get(wanted)
                    if record is not None:
                        archived[wanted] = record
        return await asyncio.to_thread(self._compare, session, first_id, second, secret, archived)

    def _compare(
        self,
        session: DashboardSession,
        first_id: str | None,
        second: str | None,
        secret: str | None,
        archived: Mapping[str, ArchivedEpisode],
    ) -> Comparison | str:
        return compare_episodes(
            self.store,
            first_id,
            second,
            lambda stored: self.may_see(session, stored, secret),
            archived,
            lambda record: self.may_see_archived(session, record, secret),
        )

    # ---------------------------------------------------------------- snapshots

    def snapshot(self, session: DashboardSession, notice: str = "") -> Snapshot:
        snapshot = self._snapshot(session, notice)
        snapshot.task = self.tasks.get(str(snapshot.observation.get("task_id")), {})
        return snapshot

    def _snapshot(self, session: DashboardSession, notice: str) -> Snapshot:
        replay = session.replay
        if replay is not None and replay.episode is not None:
            episode = replay.episode
            verdict = (
                "the re-simulation reproduces the stored event log exactly"
                if replay.verified
                else "warning: the re-simulation differs from the stored event log"
            )
            return Snapshot(
                mode="replay",
                episode_id=replay.source_id,
                observation=replay.observation,
                records=episode.log.records,
                trace=episode.trace,
                rewards=list(episode.rewards),
                grade=grade_episode(episode) if episode.done else None,
                notice=notice or f"Replaying episode {replay.source_id}: {verdict}.",
                replay_position=(replay.position, len(replay.actions)),
                secret=replay.secret,
            )
        if session.watch_id is not None:
            try:
                watched = self.store.get(session.watch_id)
            except EpisodeNotFoundError as exc:
                session.watch_id = None
                notice = notice or f"{exc}; back to your own episode."
            else:
                return self._stored_snapshot(watched, "watch", notice)
        stored, lost = self._live(session) if session.episode_id is not None else (None, "")
        if stored is None:
            return Snapshot("empty", None, {}, [], [], [], None, notice=notice or lost)
        return self._stored_snapshot(stored, "live", notice)

    def _stored_snapshot(self, stored: Any, mode: str, notice: str) -> Snapshot:
        env = stored.env
        core = env.episode
        observation = env.observation
        grade = observation.get("grade") or (env.grade() if stored.finished else None)
        return Snapshot(
            mode=mode,
            episode_id=stored.episode_id,
            observation=observation,
            records=core.log.records,
            trace=core.trace,
            rewards=list(core.rewards),
            grade=grade,
            notice=notice,
            secret=stored.secret,
        )


# --------------------------------------------------------------------------- comparison


@dataclass(slots=True)
class Side:
    """One episode of a comparison, as plain data."""

    label: str
    observation: dict[str, Any]
    records: list[dict[str, Any]]
    trace: list[dict[str, Any]]
    grade: dict[str, Any] | None


@dataclass(slots=True)
class Comparison:
    first: Side
    second: Side
    divergence: int | None  # the first step (1-based) whose actions differ; None when they never do


def replay_archived(store: EpisodeStore, record: ArchivedEpisode) -> Episode | str:
    """An archived episode played again from its task, seed, worker count and actions, or why it cannot be."""
    actions = [entry["action"] for entry in record.trace]
    if len(actions) > MAX_REPLAY_STEPS:
        return f"Episode {record.episode_id} has {len(actions)} steps; replays are limited to {MAX_REPLAY_STEPS}."
    try:
        episode = archived_start(store, record)
    except (UnknownTaskError, ValueError) as exc:
        return f"Episode {record.episode_id} cannot be replayed here: {exc}"
    for action in actions:
        episode.step(action)
    return episode


def archived_start(store: EpisodeStore, record: ArchivedEpisode) -> Episode:
    """A new episode of an archived one's task, seed and worker count, sealed as it was.

    The archive says only whether the episode was sealed; the server's
    outcome secret, which it alone holds, seals the task's hidden draws and
    the outcome rolls again. A server restarted with another secret (or
    none) rolls other outcomes, and the replay says that it differs from the
    archived event log. Raises as the registry's ``resolve`` does.
    """
    secret = outcome_secret_bytes(store.outcome_secret) if record.sealed else None
    resolved = store.registry.resolve(record.task_id, record.seed, record.worker_count, secret=secret)
    episode: Episode = new_episode(resolved.compiled, resolved.seed)
    if secret is not None:
        episode.seal(secret)
    return episode


def first_divergence(first: Sequence[Mapping[str, Any]], second: Sequence[Mapping[str, Any]]) -> int | None:
    """The first step at which two action traces differ (one going on where the other stopped counts)."""
    for index, (a, b) in enumerate(zip(first, second, strict=False)):
        if a.get("action") != b.get("action"):
            return index + 1
    return None if len(first) == len(second) else min(len(first), len(second)) + 1


def compare_episodes(
    store: EpisodeStore,
    first_id: str | None,
    second: str | None,
    may_see: Callable[[StoredEpisode], str | None] | None = None,
    archived: Mapping[str, ArchivedEpisode] | None = None,
    may_see_archived: Callable[[ArchivedEpisode], str | None] | None = None,
) -> Comparison | str:
    """Two episodes side by side, or what is wrong with the request (a string).

    ``second`` is another episode's id, or the name of a built-in policy,
    which then plays the first episode's task and seed (and sealed outcomes)
    to the end. ``may_see`` says why an episode may not be shown (None: it may).
    An episode that left the store is taken from ``archived`` (records read
    from the archive, by id), played again from its actions, if
    ``may_see_archived`` lets it be shown.
    """

    def visible(episode_id: str) -> Episode | str:
        try:
            stored = store.get(episode_id)
        except EpisodeNotFoundError as exc:
            record = (archived or {}).get(episode_id)
            if record is None:
                return str(exc)
            why = may_see_archived(record) if may_see_archived is not None else None
            return replay_archived(store, record) if why is None else why
        why = may_see(stored) if may_see is not None else None
        if why is not None:
            return why
        core = stored.env.episode
        assert core is not None  # a stored episode has been reset
        return core

    wanted = (first_id or "").strip()
    other = (second or "").strip()
    if not wanted or not other:
        return "Give an episode id, and another episode id or a built-in policy to compare it with."
    core = visible(wanted)
    if isinstance(core, str):
        return core
    left = _side(f"episode {wanted}", core)
    if other in POLICIES:
        episode = same_start(core)
        policy = make_policy(other, seed=core.seed or 0)
        observation = build_observation(episode)
        while not episode.done and episode.step_count < MAX_REPLAY_STEPS:
            episode.step(policy.act(observation))
            observation = build_observation(episode)
        right = _side(f"policy {other} on the same task and seed", episode)
    else:
        other_core = visible(other)
        if isinstance(other_core, str):
            return other_core
        right = _side(f"episode {other}", other_core)
    return Comparison(left, right, first_divergence(left.trace, right.trace))


def same_start(core: Episode) -> Episode:
    """A new episode of ``core``'s task and seed that rolls the same outcomes (a sealed one's too)."""
    episode: Episode = new_episode(core.compiled, core.seed)
    if core.sealed:
        sealed_like(episode, core.seed_key)
    return episode


def sealed_like(episode: Episode, key: int) -> None:
    """Seal a new episode with a sealed one's outcome key (not its secret): it then rolls the same outcomes.

    A canvas episode draws its simulated executor's hidden parameters from
    the key, so its executor is drawn again under the key, as sealing does.
    """
    episode.seed_key, episode.sealed = key, True
    if isinstance(episode, CanvasEpisode) and episode.simulated:
        episode.executor = SimulatedExecutor(episode.problem, key)


def _side(label: str, episode: Episode) -> Side:
    return Side(
        label,
        build_observation(episode),
        episode.log.records,
        episode.trace,
        grade_episode(episode) if episode.done else None,
    )


# --------------------------------------------------------------------------- export


def may_export(stored: StoredEpisode, credential: str | None, token: str | None) -> bool:
    """Whether a request carrying ``credential`` may download ``stored``: its episode_secret, or the server's token."""
    if not credential:
        return False
    if token and hmac.compare_digest(credential.encode(), token.encode()):
        return True
    return stored.owned_by(credential)


def may_export_archived(record: ArchivedEpisode, credential: str | None, token: str | None) -> bool:
    """:func:`may_export` for an episode that is in the archive only."""
    if not credential:
        return False
    if token and hmac.compare_digest(credential.encode(), token.encode()):
        return True
    return archived_owned_by(record, credential)


def export_archived(store: EpisodeStore, record: ArchivedEpisode) -> dict[str, Any] | str:
    """:func:`export_episode` for an episode that left the store, from its archived record (or why it cannot be).

    The observations are re-simulated from the archived actions, as a
    replay is; ``replay_verified`` says whether that reproduces the archived
    event log. The grade is the archived one.
    """
    replayed = replay_archived(store, record)
    if isinstance(replayed, str):
        return replayed
    return {
        **episode_document(record.episode_id, record.task_id, replayed, record.worker_count),
        "finished": True,
        "grade": record.grade,
        "events": record.events,
        "replay_verified": orjson.loads(orjson.dumps(replayed.log.records)) == record.events,
    }


def episode_document(episode_id: str, task_id: str, core: Episode, worker_count: int | None) -> dict[str, Any]:
    """The parts of an exported episode that its actions determine: how to start it, and what it did."""
    replayed = same_start(core)
    observations = [build_observation(replayed)]
    for entry in core.trace:
        replayed.step(entry["action"])
        observations.append(build_observation(replayed))
    return {
        "format": "workflow_orchestrator.episode/1",
        "episode_id": episode_id,
        "task_id": task_id,
        "seed": core.seed,
        "reset": {"task_id": task_id, "seed": core.seed, **({"worker_count": worker_count} if worker_count else {})},
        "finished": core.done,
        "step_count": core.step_count,
        "actions": [entry["action"] for entry in core.trace],
        "trace": core.trace,
        "rewards": list(core.rewards),
        "observations": observations,
        "events": core.log.records,
        "grade": grade_episode(core) if core.done else None,
        "replay_verified": replayed.log.digest() == core.log.digest(),
    }


def export_episode(stored: Any) -> dict[str, Any]:
    """A stored episode as one JSON document: how to start it again, and everything it did.

    ``reset`` holds the parameters of ``POST /reset`` that start the same
    episode, and ``actions`` the actions in order, so the file replays to
    the same event log and grade; ``observations`` are the observation
    before the first step and after every step (re-simulated from the
    actions, as a replay is), with ``trace``, ``events``, ``rewards`` and
    the ``grade`` once finished.
    """
    env = stored.env
    core = env.episode
    assert core is not None  # a stored episode has been reset
    arena = (env.observation.get("arena") or {}).get("total_workers")
    return {
        **episode_document(stored.episode_id, stored.task_id, core, arena),
        "finished": stored.finished,
        "grade": grade_episode(core) if stored.finished else None,
    }
