"""Pictures of an episode as HTML and SVG strings, built on the server.

Every function here is pure: it takes plain data from the core (the
observation, the event log, the action trace, the rewards, the grade) and
returns markup. Everything drawn is inline SVG or HTML, so the page loads
nothing from the network, and every piece of text that came from a task, an
agent or a message goes through :func:`esc` first: a subtask named
``<script>`` is drawn as those eight characters.

Colours: what sits on the page's own background (labels, axes, grid, legends)
takes its colour from CSS classes and variables that the dashboard's style
sheet sets for the light and the dark theme; what sits on a coloured shape (a
subtask, a bar, a badge) has a fixed pair of colours with a contrast of at
least 4.5:1. No glyph needs an emoji font.

The DAG layout (layers, bends for long edges, an order with few crossings) is
computed once per workflow shape and cached, so redrawing the DAG every step
only recolours it.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from workflow_orchestrator.server.core.dimensions import CANVAS_GATE_NOTE, GATE_NOTE, describe_dimension
from workflow_orchestrator.server.core.formulas import deadline_met, deadline_open
from workflow_orchestrator.server.core.grading import GATED_DIMENSIONS as GATED

Observation = Mapping[str, Any]
Record = Mapping[str, Any]

# Subtask status -> (fill, text colour); every pair has a contrast of at least 4.5:1.
STATUS_COLOURS: dict[str, tuple[str, str]] = {
    "pending": ("#d0d7de", "#24292f"),
    "ready": ("#54aeff", "#0a3069"),
    "in_progress": ("#d4a72c", "#3b2300"),
    "completed": ("#1a7f37", "#ffffff"),
    "failed": ("#cf222e", "#ffffff"),
}
AGENT_STATUS_COLOURS: dict[str, str] = {"idle": "#1a7f37", "working": "#7d4e00", "offline": "#57606a"}
OUTCOME_COLOURS: dict[str, str] = {
    "completed": "#1a7f37",
    "failed": "#cf222e",
    "aborted": "#57606a",
    "running": "#d4a72c",
}
# The text drawn on a bar of each outcome.
BAR_INK: dict[str, str] = {"completed": "#ffffff", "failed": "#ffffff", "aborted": "#ffffff", "running": "#3b2300"}
# Deadline verdicts on a white badge (the DAG's) or in a table.
BADGE_COLOURS: dict[str, str] = {"met": "#1a7f37", "missed": "#cf222e", "open": "#9a6700"}
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"


def esc(value: object) -> str:
    """Text made safe for HTML content and attribute values."""
    return html.escape(str(value), quote=True)


def shorten(text: str, limit: int) -> str:
    """At most ``limit`` characters, with an ellipsis when cut (escape afterwards)."""
    return text if len(text) <= limit else text[: max(limit - 1, 1)] + "…"


def number(value: float | int | None, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return f"{value:.{digits}f}"


# --------------------------------------------------------------------------- deadlines


@dataclass(frozen=True, slots=True)
class DeadlineStatus:
    """Whether one subtask's deadline was met, missed, or is still open.

    Met means completed at or before the deadline, as the grader counts it;
    missed means the event log recorded it missed, it completed late, or the
    episode ended without it.
    """

    subtask_id: str
    deadline: int
    state: str  # "met" | "missed" | "open"
    completed_at: int | None
    due_in: int | None  # time left while open


def deadline_statuses(observation: Observation, records: Iterable[Record]) -> list[DeadlineStatus]:
    missed_in_log = {r.get("subtask") for r in records if r.get("kind") == "deadline_missed"}
    now = int(observation.get("time_used") or 0)
    over = bool(observation.get("done"))
    statuses = []
    for subtask in observation.get("subtasks", ()):
        deadline = subtask.get("deadline")
        if deadline is None:
            continue
        completed_at = subtask.get("completed_at")
        if deadline_met(completed_at, deadline):
            state = "met"
        elif deadline_open(completed_at, deadline, now) and not over and subtask["id"] not in missed_in_log:
            state = "open"
        else:
            state = "missed"
        due_in = deadline - now if state == "open" else None
        statuses.append(DeadlineStatus(subtask["id"], deadline, state, completed_at, due_in))
    return statuses


def deadlines_html(statuses: Sequence[DeadlineStatus]) -> str:
    if not statuses:
        return '<div class="wo-muted">This task has no deadlines.</div>'
    rows = []
    for status in statuses:
        if status.state == "met":
            verdict = f"met (done at t={status.completed_at})"
        elif status.state == "missed":
            verdict = (
                f"missed (done late at t={status.completed_at})"
                if status.completed_at is not None
                else "missed (not completed)"
            )
        else:
            verdict = f"open: due in {status.due_in}" + (" (at risk)" if (status.due_in or 0) <= 2 else "")
        rows.append(
            f'<tr data-deadline="{esc(status.subtask_id)}" data-state="{status.state}">'
            f"<td>{esc(status.subtask_id)}</td><td>t ≤ {status.deadline}</td>"
            f'<td class="wo-dl-{status.state}" style="font-weight:600">{esc(verdict)}</td></tr>'
        )
    met = sum(1 for status in statuses if status.state == "met")
    missed = sum(1 for status in statuses if status.state == "missed")
    return (
        f'<div class="wo-muted">{met} met · {missed} missed · {len(statuses) - met - missed} open</div>'
        '<div class="wo-scroll"><table class="wo-table" id="wo-deadline-table"><thead><tr><th>subtask</th>'
        f"<th>deadline</th><th>status</th></tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


# --------------------------------------------------------------------------- DAG


@dataclass(frozen=True, slots=True)
class DagLayout:
    """Where a workflow's subtasks and edges go, in slots of a layered drawing.

    ``layers`` lists each layer's items top to bottom: a subtask id, or a
    bend ``(dependency, subtask, layer)`` of an edge that crosses that layer
    (so a long edge gets a lane of its own rather than cutting through
    subtasks). ``slot`` gives every item's ``(layer, index)``.
    """

    layers: tuple[tuple[Any, ...], ...]
    slot: dict[Any, tuple[int, int]]
    edges: tuple[tuple[str, str], ...]
    crossings: int
    initial_crossings: int


def _layer_crossings(upper: Sequence[Any], lower: Sequence[Any], links: Sequence[tuple[Any, Any]]) -> int:
    """Crossings between two neighbouring layers: pairs of links whose ends are in opposite orders."""
    top = {item: index for index, item in enumerate(upper)}
    bottom = {item: index for index, item in enumerate(lower)}
    ends = sorted((top[a], bottom[b]) for a, b in links if a in top and b in bottom)
    crossings = 0
    for index, (a1, b1) in enumerate(ends):
        for a2, b2 in ends[index + 1 :]:
            if a2 > a1 and b2 < b1:
                crossings += 1
    return crossings


@lru_cache(maxsize=256)
def dag_layout(shape: tuple[tuple[str, tuple[str, ...]], ...]) -> DagLayout:
    """A layered layout of a workflow's shape ``((subtask_id, depends_on), ...)``.

    Layers are longest-path layers (a subtask sits one layer after its latest
    dependency); an edge that spans several layers gets a bend in each layer
    it crosses. Inside a layer, items are ordered by barycentre sweeps, down
    then up, repeated while they remove crossings; the order with the fewest
    crossings between neighbouring layers is kept.
    """
    declared = {node: index for index, (node, _) in enumerate(shape)}
    deps = {node: tuple(d for d in ds if d in declared and d != node) for node, ds in shape}
    depth: dict[str, int] = {}
    visiting: set[str] = set()

    def layer_of(node: str) -> int:
        # Iterative enough for workflows (tens of subtasks); a cycle cannot pass validation.
        if node not in depth:
            visiting.add(node)
            depth[node] = 1 + max((layer_of(d) for d in deps[node] if d not in visiting), default=-1)
            visiting.discard(node)
        return depth[node]

    for node in declared:
        layer_of(node)
    count = max(depth.values(), default=-1) + 1
    layers: list[list[Any]] = [[] for _ in range(count)]
    for node in sorted(declared, key=declared.__getitem__):
        layers[depth[node]].append(node)
    # Links between neighbouring layers: (upper item, lower item).
    links: list[list[tuple[Any, Any]]] = [[] for _ in range(max(count - 1, 0))]
    edges: list[tuple[str, str]] = []
    for node, _ in shape:
        for dep in deps[node]:
            edges.append((dep, node))
            previous: Any = dep
            for layer in range(depth[dep] + 1, depth[node]):
                bend = (dep, node, layer)
                layers[layer].append(bend)
                links[layer - 1].append((previous, bend))
                previous = bend
            links[depth[node] - 1].append((previous, node))
    up: dict[Any, list[Any]] = {}
    down: dict[Any, list[Any]] = {}
    for layer_links in links:
        for a, b in layer_links:
            down.setdefault(a, []).append(b)
            up.setdefault(b, []).append(a)

    def total(order: list[list[Any]]) -> int:
        return sum(_layer_crossings(order[i], order[i + 1], links[i]) for i in range(count - 1))

    def sweep(order: list[list[Any]], downward: bool) -> list[list[Any]]:
        order = [list(layer) for layer in order]
        indices = range(1, count) if downward else range(count - 2, -1, -1)
        for index in indices:
            neighbour = {item: rank for rank, item in enumerate(order[index - 1 if downward else index + 1])}
            current = {item: rank for rank, item in enumerate(order[index])}

            def key(item: Any, neighbour: dict[Any, int] = neighbour, current: dict[Any, int] = current) -> float:
                near = [neighbour[n] for n in (up if downward else down).get(item, ()) if n in neighbour]
                return sum(near) / len(near) if near else float(current[item])

            order[index].sort(key=key)
        return order

    best = [list(layer) for layer in layers]
    initial = fewest = total(best)
    order = best
    for _ in range(6):
        if fewest == 0:
            break
        improved = False
        for downward in (True, False):
            order = sweep(order, downward)
            crossings = total(order)
            if crossings < fewest:
                best, fewest, improved = [list(layer) for layer in order], crossings, True
        if not improved:
            break
    slot = {item: (index, rank) for index, layer in enumerate(best) for rank, item in enumerate(layer)}
    return DagLayout(tuple(tuple(layer) for layer in best), slot, tuple(edges), fewest, initial)


def dag_positions(shape: tuple[tuple[str, tuple[str, ...]], ...]) -> dict[str, tuple[int, int]]:
    """Layer and rank (top to bottom) of every subtask."""
    return {item: where for item, where in dag_layout(shape).slot.items() if isinstance(item, str)}


@lru_cache(maxsize=256)
def critical_path(shape: tuple[tuple[str, tuple[str, ...]], ...], work: tuple[int, ...]) -> tuple[str, ...]:
    """The longest chain of work, first subtask first (ties: the first declared)."""
    declared = {node: index for index, (node, _) in enumerate(shape)}
    finish: dict[str, tuple[int, str | None]] = {}
    for node, _deps in shape:  # declared order is not always a topological one: settle it below
        finish[node] = (work[declared[node]], None)
    for _ in range(len(shape)):
        changed = False
        for node, deps in shape:
            best, via = 0, None
            for dep in deps:
                if dep in finish and finish[dep][0] > best:
                    best, via = finish[dep][0], dep
            value = (best + work[declared[node]], via)
            if value != finish[node]:
                finish[node], changed = value, True
        if not changed:
            break
    if not finish:
        return ()
    last: str | None = min(declared, key=lambda n: (-finish[n][0], declared[n]))
    path: list[str] = []
    while last is not None and last not in path:
        path.append(last)
        last = finish[last][1]
    return tuple(reversed(path))


def fastest_durations(observation: Observation) -> tuple[int, ...]:
    """Per subtask, its duration on the fastest agent that takes its type (the core's critical path measure).

    An agent that takes a type but never completes it (a trap) is not told
    apart in the observation, so with traps this chain can be shorter than
    the core's ``critical_path_length``.
    """
    agents = observation.get("agents", ())
    durations = []
    for subtask in observation.get("subtasks", ()):
        work = int(subtask.get("work") or 1)
        able = [a for a in agents if subtask.get("type") in (a.get("capabilities") or ())]
        durations.append(min((max(1, int(a.get("speed") or 1) * work) for a in able), default=work))
    return tuple(durations)


def workflow_shape(subtasks: Sequence[Mapping[str, Any]]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple((s["id"], tuple(s.get("depends_on", ()))) for s in subtasks)


NODE_W, NODE_H, GAP_X, GAP_Y, BEND_H, PAD = 156, 46, 44, 14, 14, 14
MAX_LABELLED_DEADLINES = 6
# The smallest text drawn anywhere, in CSS pixels: pictures are never shown below their natural size.
MIN_FONT_PX = 11


def _edge_path(points: Sequence[tuple[float, float]]) -> str:
    """A path through ``points``: curves between columns, straight through a bend's lane."""
    (x, y), rest = points[0], points[1:]
    parts = [f"M{x:.1f},{y:.1f}"]
    for index, (nx_, ny_) in enumerate(rest):
        if index % 2 == 0:  # from a column's right edge to the next column's left edge
            bend = (nx_ - x) / 2
            parts.append(f"C{x + bend:.1f},{y:.1f} {nx_ - bend:.1f},{ny_:.1f} {nx_:.1f},{ny_:.1f}")
        else:  # across a bend's lane
            parts.append(f"L{nx_:.1f},{ny_:.1f}")
        x, y = nx_, ny_
    return " ".join(parts)


def dag_svg(observation: Observation, statuses: Sequence[DeadlineStatus] = ()) -> str:
    """The workflow as a layered DAG, each subtask coloured by its status, the critical path marked."""
    subtasks = list(observation.get("subtasks", ()))
    if not subtasks:
        return '<div class="wo-muted">No workflow yet: pick a task and press Reset.</div>'
    shape = workflow_shape(subtasks)
    layout = dag_layout(shape)
    critical = critical_path(shape, fastest_durations(observation))
    critical_edges = set(zip(critical, critical[1:], strict=False))
    heights = [sum(NODE_H + GAP_Y if isinstance(item, str) else BEND_H for item in layer) for layer in layout.layers]
    plot_h = max(heights) - GAP_Y
    height = PAD * 2 + plot_h
    width = PAD * 2 + len(layout.layers) * NODE_W + (len(layout.layers) - 1) * GAP_X
    centre: dict[Any, float] = {}
    for index, layer in enumerate(layout.layers):
        y = PAD + (plot_h - heights[index] + GAP_Y) / 2
        for item in layer:
            size = NODE_H + GAP_Y if isinstance(item, str) else BEND_H
            centre[item] = y + (NODE_H if isinstance(item, str) else BEND_H) / 2
            y += size

    def column(item: Any) -> float:
        return PAD + layout.slot[item][0] * (NODE_W + GAP_X)

    deadline_state = {status.subtask_id: status for status in statuses}
    by_id = {s["id"]: s for s in subtasks}
    parts = [
        f'<div class="wo-dag-scroll" tabindex="0" aria-label="workflow DAG, scrolls both ways">'
        f'<svg xmlns="http://www.w3.org/2000/svg" class="wo-dag" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" style="--wo-w:{width}px;--wo-h:{height}px;font-family:{FONT}" '
        f'role="img" aria-label="workflow DAG" data-step="{esc(observation.get("step_count", 0))}" '
        f'data-crossings="{layout.crossings}">',
        '<defs><marker id="wo-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" class="wo-arrow-head"/></marker></defs>',
    ]
    for dep, node in layout.edges:
        points = [(column(dep) + NODE_W, centre[dep])]
        for crossed in range(layout.slot[dep][0] + 1, layout.slot[node][0]):
            bend = (dep, node, crossed)
            points += [(column(bend), centre[bend]), (column(bend) + NODE_W, centre[bend])]
        points.append((column(node) - 2, centre[node]))
        done = by_id[dep]["status"] == "completed"
        kind = "wo-edge-critical" if (dep, node) in critical_edges else "wo-edge-done" if done else "wo-edge"
        parts.append(
            f'<path class="{kind}" data-edge="{esc(dep)}|{esc(node)}" d="{_edge_path(points)}" fill="none" '
            'marker-end="url(#wo-arrow)"/>'
        )
    for subtask in subtasks:
        x, y = column(subtask["id"]), centre[subtask["id"]] - NODE_H / 2
        status = subtask.get("status", "pending")
        fill, ink = STATUS_COLOURS.get(status, STATUS_COLOURS["pending"])
        if status == "in_progress":
            detail = f"{subtask.get('assigned_agent')} · {subtask.get('time_left')} left"
        elif status == "completed":
            detail = f"{subtask.get('completed_by')} · t={subtask.get('completed_at')}"
        elif status == "failed":
            last = (subtask.get("failures") or [{}])[-1]
            detail = f"failed {last.get('kind', '')} on {last.get('agent', '?')}"
        else:
            detail = f"{status} · {subtask.get('type')}"
        on_path = subtask["id"] in critical
        tooltip = (
            f"{subtask['id']} [{subtask.get('type')}] {status}; work {subtask.get('work')}; attempts "
            f"{subtask.get('attempts', 0)}"
            + (f"; deadline t={subtask['deadline']}" if subtask.get("deadline") is not None else "")
            + ("; on the critical path" if on_path else "")
        )
        critical_attr = ' data-critical="true"' if on_path else ""
        outline = "#24292f" if status in ("ready", "in_progress") else fill
        parts.append(
            f'<g class="wo-node" data-subtask="{esc(subtask["id"])}" data-status="{esc(status)}"'
            f"{critical_attr}>"
            f"<title>{esc(tooltip)}</title>"
            + (
                f'<rect class="wo-critical-halo" x="{x - 4:.1f}" y="{y - 4:.1f}" width="{NODE_W + 8}" '
                f'height="{NODE_H + 8}" rx="11" fill="none"/>'
                if on_path
                else ""
            )
            + f'<rect x="{x:.1f}" y="{y:.1f}" width="{NODE_W}" height="{NODE_H}" rx="8" fill="{fill}" '
            f'stroke="{outline}" stroke-width="1.5"/>'
            f'<text x="{x + 9:.1f}" y="{y + 19:.1f}" font-size="12" font-weight="600" fill="{ink}">'
            f"{esc(shorten(subtask['id'], 20))}</text>"
            f'<text x="{x + 9:.1f}" y="{y + 37:.1f}" font-size="11" fill="{ink}">{esc(shorten(detail, 23))}</text>'
        )
        if subtask.get("deadline") is not None:
            state = deadline_state.get(subtask["id"])
            verdict = state.state if state else "open"
            colour = BADGE_COLOURS[verdict]
            text = {"met": "met", "missed": "missed"}.get(verdict, "due")
            parts.append(
                f'<rect x="{x + NODE_W - 74:.1f}" y="{y - 9:.1f}" width="74" height="17" rx="8" fill="#ffffff" '
                f'stroke="{colour}"/><text x="{x + NODE_W - 37:.1f}" y="{y + 4:.1f}" font-size="11" '
                f'text-anchor="middle" fill="{colour}" font-weight="700">{text} t≤{subtask["deadline"]}</text>'
            )
        if subtask.get("failures"):
            parts.append(
                f'<circle cx="{x + 4:.1f}" cy="{y + 4:.1f}" r="9" fill="#82071e"/><text x="{x + 4:.1f}" '
                f'y="{y + 8:.1f}" font-size="11" text-anchor="middle" fill="#ffffff">{len(subtask["failures"])}</text>'
            )
        parts.append("</g>")
    parts.append("</svg></div>")
    return dag_legend_html() + "".join(parts)


def dag_legend_html() -> str:
    swatches = "".join(
        f'<span class="wo-key"><i class="wo-swatch" style="background:{fill}"></i>{status.replace("_", " ")}</span>'
        for status, (fill, _) in STATUS_COLOURS.items()
    )
    return (
        f'<div class="wo-legend" id="wo-dag-legend">{swatches}'
        '<span class="wo-key"><i class="wo-swatch wo-swatch-critical"></i>critical path (longest chain of work)'
        '</span><span class="wo-key"><i class="wo-swatch wo-swatch-edge"></i>dependency (dark: met)</span>'
        '<span class="wo-key"><span class="wo-tag">due t≤9</span> deadline: due, met or missed</span>'
        '<span class="wo-key"><span class="wo-count">2</span> failed attempts</span></div>'
    )


# --------------------------------------------------------------------------- Gantt


@dataclass(frozen=True, slots=True)
class Bar:
    """One attempt of one subtask on one agent."""

    agent: str
    subtask: str
    start: int
    end: int
    outcome: str  # "completed" | "failed" | "aborted" | "running"
    detail: str = ""
    planned_end: int | None = None  # for running attempts: when they are due


def schedule_bars(records: Iterable[Record], now: int) -> tuple[list[Bar], list[tuple[str, int, int | None]]]:
    """Attempts as bars, and agents' offline spans ``(agent, from, until)``, from the event log."""
    open_attempts: dict[tuple[str, str], tuple[int, int]] = {}
    bars: list[Bar] = []
    offline_since: dict[str, int] = {}
    offline: list[tuple[str, int, int | None]] = []
    for record in records:
        kind = record.get("kind")
        if kind == "delegated":
            key = (str(record.get("subtask")), str(record.get("agent")))
            open_attempts[key] = (int(record.get("t", 0)), int(record.get("duration") or 0))
        elif kind in ("completed", "failed", "aborted"):
            key = (str(record.get("subtask")), str(record.get("agent")))
            start, _ = open_attempts.pop(key, (int(record.get("t", 0)), 0))
            detail = ""
            if kind == "failed":
                detail = f"{record.get('failure', '')} ({record.get('cause', '')})"
            bars.append(Bar(key[1], key[0], start, int(record.get("t", start)), str(kind), detail))
        elif kind == "agent_offline":
            offline_since[str(record.get("agent"))] = int(record.get("t", 0))
        elif kind == "agent_online":
            agent = str(record.get("agent"))
            if agent in offline_since:
                offline.append((agent, offline_since.pop(agent), int(record.get("t", 0))))
    for (subtask, agent), (start, duration) in open_attempts.items():
        bars.append(Bar(agent, subtask, start, now, "running", planned_end=start + duration if duration else None))
    for agent, since in offline_since.items():
        offline.append((agent, since, None))
    return bars, offline


GANTT_NAME_W, GANTT_ROW_H, GANTT_TOP, GANTT_MIN_W, GANTT_MIN_UNIT = 150, 30, 26, 720, 22


def gantt_horizon(observation: Observation, records: Sequence[Record], statuses: Sequence[DeadlineStatus]) -> int:
    """The time the Gantt chart spans: now, every attempt and deadline, and the time limit."""
    now = int(observation.get("time_used") or 0)
    bars, _ = schedule_bars(records, now)
    horizon = max(
        [now + 1, *(b.end for b in bars), *((b.planned_end or 0) for b in bars)] + [s.deadline + 1 for s in statuses]
    )
    limit = observation.get("time_limit")
    return max(horizon, int(limit)) if limit else horizon


def _bar_label(subtask: str, room: float) -> str:
    """The subtask's id if it fits in ``room`` pixels, else its last part (``task_07`` -> ``07``), else nothing."""
    fits = int((room - 6) / 6.6)
    if len(subtask) <= fits:
        return subtask
    tail = subtask.replace("-", "_").rsplit("_", 1)[-1]
    return tail if len(tail) <= fits else ""


def gantt_svg(
    observation: Observation,
    records: Sequence[Record],
    statuses: Sequence[DeadlineStatus] = (),
    horizon: int | None = None,
    legend: bool = True,
) -> str:
    """Agents against time: every attempt so far, failures marked, deadlines and now as lines.

    The agents' names are a column of their own that stays put while the
    chart scrolls sideways (on a phone), and the chart is never drawn below
    its natural size, so no label is smaller than :data:`MIN_FONT_PX`.
    ``horizon`` fixes the time axis (to line two charts up).
    """
    agents = [a["name"] for a in observation.get("agents", ())]
    if not agents:
        return '<div class="wo-muted">No schedule yet.</div>'
    now = int(observation.get("time_used") or 0)
    bars, offline = schedule_bars(records, now)
    horizon = max(horizon or 0, gantt_horizon(observation, records, statuses))
    unit = max(GANTT_MIN_W / horizon, GANTT_MIN_UNIT)
    row_h, top, right = GANTT_ROW_H, GANTT_TOP, 18
    width = int(unit * horizon + right + 8)
    rows_h = row_h * len(agents)
    height = top + rows_h + 34

    def x_of(t: float) -> float:
        return 8 + t * unit

    row_of = {name: index for index, name in enumerate(agents)}
    names = "".join(
        f'<div class="wo-gantt-name{" wo-alt" if index % 2 else ""}" title="{esc(name)}" '
        f'style="height:{row_h}px;line-height:{row_h}px">{esc(name)}</div>'
        for index, name in enumerate(agents)
    )
    parts = [
        '<div class="wo-gantt-scroll" tabindex="0" aria-label="schedule, scrolls sideways">'
        f'<div class="wo-gantt-grid"><div class="wo-gantt-names" style="width:{GANTT_NAME_W}px;'
        f'padding-top:{top}px">{names}</div>'
        f'<svg xmlns="http://www.w3.org/2000/svg" class="wo-gantt" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" style="font-family:{FONT}" role="img" aria-label="schedule" data-bars="{len(bars)}" '
        f'data-horizon="{horizon}">',
        '<defs><pattern id="wo-hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="6" height="6" class="wo-hatch-bg"/>'
        '<line x1="0" y1="0" x2="0" y2="6" class="wo-hatch-line" stroke-width="2"/></pattern></defs>',
    ]
    for index in range(len(agents)):
        if index % 2:
            parts.append(f'<rect class="wo-row-alt" x="0" y="{top + index * row_h}" width="{width}" height="{row_h}"/>')
    tick_every = max(1, round(horizon / (width / 48)))
    for t in range(0, horizon + 1, tick_every):
        parts.append(
            f'<line class="wo-grid" x1="{x_of(t):.1f}" y1="{top - 4}" x2="{x_of(t):.1f}" y2="{top + rows_h}"/>'
            f'<text class="wo-tm" x="{x_of(t):.1f}" y="{top - 9}" font-size="11" text-anchor="middle">{t}</text>'
        )
    for agent, since, until in offline:
        if agent not in row_of:
            continue
        y = top + row_of[agent] * row_h
        end = horizon if until is None else until
        parts.append(
            f'<rect class="wo-offline" data-agent="{esc(agent)}" x="{x_of(since):.1f}" y="{y + 3}" '
            f'width="{max(x_of(end) - x_of(since), 2):.1f}" height="{row_h - 6}" fill="url(#wo-hatch)">'
            f"<title>{esc(agent)} offline from t={since}</title></rect>"
        )
    for bar in bars:
        if bar.agent not in row_of:
            continue
        y = top + row_of[bar.agent] * row_h + 4
        x0, x1 = x_of(bar.start), x_of(bar.end)
        if bar.outcome == "running" and bar.planned_end is not None and bar.planned_end > bar.end:
            parts.append(
                f'<rect class="wo-planned" x="{x1:.1f}" y="{y}" width="{x_of(bar.planned_end) - x1:.1f}" '
                f'height="{row_h - 8}" rx="3" fill="none" stroke="{OUTCOME_COLOURS["running"]}" '
                'stroke-dasharray="4 3"/>'
            )
        tooltip = f"{bar.subtask} on {bar.agent}: t={bar.start}–{bar.end} {bar.outcome} {bar.detail}".strip()
        bar_w = max(x1 - x0, 3.0)
        parts.append(
            f'<g class="wo-bar" data-subtask="{esc(bar.subtask)}" data-agent="{esc(bar.agent)}" '
            f'data-outcome="{bar.outcome}"><title>{esc(tooltip)}</title>'
            f'<rect x="{x0:.1f}" y="{y}" width="{bar_w:.1f}" height="{row_h - 8}" rx="3" '
            f'fill="{OUTCOME_COLOURS[bar.outcome]}"/>'
        )
        room = bar_w - (16 if bar.outcome == "failed" else 0)
        label = _bar_label(bar.subtask, room)
        if label:
            parts.append(
                f'<text x="{x0 + 4:.1f}" y="{y + row_h / 2 + 1}" font-size="11" fill="{BAR_INK[bar.outcome]}">'
                f"{esc(label)}</text>"
            )
        if bar.outcome == "failed":
            mark = "P" if bar.detail.startswith("permanent") else "×"
            parts.append(
                f'<circle cx="{x1 - 1:.1f}" cy="{y + (row_h - 8) / 2}" r="8" fill="#82071e" stroke="#ffffff"/>'
                f'<text x="{x1 - 1:.1f}" y="{y + (row_h - 8) / 2 + 4}" font-size="11" text-anchor="middle" '
                f'fill="#ffffff" font-weight="700">{mark}</text>'
            )
        parts.append("</g>")
    bottom = top + rows_h
    # A few deadlines get a label under their line; many would overlap, so
    # then each line carries its label as a tooltip only.
    labelled = len(statuses) <= MAX_LABELLED_DEADLINES
    for index, status in enumerate(statuses):
        x = x_of(status.deadline)
        label = f"{status.subtask_id} ≤ {status.deadline} ({status.state})"
        parts.append(
            f'<g class="wo-deadline-line wo-dl-{status.state}" data-subtask="{esc(status.subtask_id)}" '
            f'data-state="{status.state}"><title>{esc(label)}</title>'
            f'<line x1="{x:.1f}" y1="{top - 2}" x2="{x:.1f}" y2="{bottom}" '
            f'stroke-width="{1.5 if labelled else 1}" stroke-dasharray="5 3"/>'
        )
        if labelled:
            parts.append(
                f'<text x="{x:.1f}" y="{bottom + 13 + 12 * (index % 2)}" font-size="11" text-anchor="middle">'
                f"{esc(shorten(status.subtask_id, 18))} ≤ {status.deadline}</text>"
            )
        parts.append("</g>")
    if statuses and not labelled:
        parts.append(
            f'<text class="wo-tm" x="8" y="{bottom + 14}" font-size="11">{len(statuses)} deadlines as '
            "dashed lines (hover one for its subtask)</text>"
        )
    parts.append(
        f'<g class="wo-now"><line x1="{x_of(now):.1f}" y1="{top - 4}" x2="{x_of(now):.1f}" y2="{bottom + 2}" '
        f'stroke-width="2"/><text x="{x_of(now) + 3:.1f}" y="{bottom + 30}" font-size="11">now t={now}</text></g>'
    )
    parts.append("</svg></div></div>")
    return (gantt_legend_html() if legend else "") + "".join(parts)


def gantt_legend_html() -> str:
    outcomes = "".join(
        f'<span class="wo-key"><i class="wo-swatch" style="background:{OUTCOME_COLOURS[outcome]}"></i>{text}</span>'
        for outcome, text in (
            ("completed", "attempt completed"),
            ("failed", "attempt failed"),
            ("aborted", "aborted"),
            ("running", "running"),
        )
    )
    return (
        f'<div class="wo-legend" id="wo-gantt-legend">{outcomes}'
        '<span class="wo-key"><i class="wo-swatch wo-swatch-planned"></i>due to finish</span>'
        '<span class="wo-key"><span class="wo-count">×</span> transient failure, '
        '<span class="wo-count">P</span> permanent</span>'
        '<span class="wo-key"><i class="wo-swatch wo-swatch-offline"></i>agent offline</span>'
        '<span class="wo-key"><i class="wo-swatch wo-swatch-deadline"></i>deadline (met, missed, open)</span>'
        '<span class="wo-key"><i class="wo-swatch wo-swatch-now"></i>now</span></div>'
    )


# --------------------------------------------------------------------------- rewards


def reward_svg(rewards: Sequence[float]) -> str:
    """Reward per step as bars, with the running total as a line on its own scale."""
    if not rewards:
        return '<div class="wo-muted">No steps yet.</div>'
    width, height, left, right, top, bottom = 560, 214, 44, 44, 14, 38
    plot_w, plot_h = width - left - right, height - top - bottom
    low, high = min(0.0, *rewards), max(0.0, *rewards)
    span = (high - low) or 1.0
    totals: list[float] = []
    running = 0.0
    for value in rewards:
        running += value
        totals.append(running)
    t_low, t_high = min(0.0, *totals), max(0.0, *totals)
    t_span = (t_high - t_low) or 1.0

    def y_of(value: float) -> float:
        return top + plot_h * (high - value) / span

    def y_total(value: float) -> float:
        return top + plot_h * (t_high - value) / t_span

    step_w = plot_w / len(rewards)
    bar_w = min(step_w * 0.7, 28.0)  # a few steps should not make slabs
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="wo-rewards" viewBox="0 0 {width} {height}" width="100%" '
        f'style="font-family:{FONT};min-width:{width}px" role="img" aria-label="reward per step" '
        f'data-steps="{len(rewards)}">',
        f'<line x1="{left}" y1="{y_of(0):.1f}" x2="{width - right}" y2="{y_of(0):.1f}" class="wo-axis"/>',
        f'<text x="{left - 4}" y="{top + 4}" font-size="11" text-anchor="end" class="wo-tm">{number(high)}</text>',
        f'<text x="{left - 4}" y="{top + plot_h}" font-size="11" text-anchor="end" class="wo-tm">{number(low)}</text>',
        f'<text x="{width - right + 4}" y="{top + 4}" font-size="11" class="wo-total">{number(t_high)}</text>',
        f'<text x="{width - right + 4}" y="{top + plot_h}" font-size="11" class="wo-total">{number(t_low)}</text>',
    ]
    for index, value in enumerate(rewards):
        x = left + (index + 0.5) * step_w - bar_w / 2
        y0, y1 = sorted((y_of(0), y_of(value)))
        parts.append(
            f'<rect x="{x:.1f}" y="{y0:.1f}" width="{max(bar_w, 1):.1f}" height="{max(y1 - y0, 1):.1f}" '
            f'fill="{"#2da44e" if value >= 0 else "#cf222e"}"><title>step {index + 1}: {value:+.3f}</title></rect>'
        )
    points = " ".join(f"{left + (index + 0.5) * step_w:.1f},{y_total(total):.1f}" for index, total in enumerate(totals))
    parts.append(f'<polyline points="{points}" fill="none" class="wo-total-line" stroke-width="2"/>')
    label_every = max(1, round(len(rewards) / 12))
    for index in range(0, len(rewards), label_every):
        parts.append(
            f'<text x="{left + (index + 0.5) * step_w:.1f}" y="{top + plot_h + 14}" font-size="11" '
            f'text-anchor="middle" class="wo-tm">{index + 1}</text>'
        )
    parts.append(
        f'<text x="{left}" y="{height - 3}" font-size="11" class="wo-tm">step · bars: reward · '
        f"line: total {totals[-1]:+.3f}</text></svg></div>"
    )
    return '<div class="wo-hscroll">' + "".join(parts)


# --------------------------------------------------------------------------- agents, gauges, hint


def spending_by_agent(records: Iterable[Record]) -> dict[str, float]:
    spent: dict[str, float] = {}
    for record in records:
        if record.get("kind") in ("completed", "failed", "aborted") and record.get("cost") is not None:
            agent = str(record.get("agent"))
            spent[agent] = spent.get(agent, 0.0) + float(record["cost"])
    return spent


def agent_cards_html(observation: Observation, records: Sequence[Record]) -> str:
    spent = spending_by_agent(records)
    cards = []
    for agent in observation.get("agents", ()):
        status = str(agent.get("status", "idle"))
        colour = AGENT_STATUS_COLOURS.get(status, "#6e7781")
        if agent.get("current_task"):
            doing = f"on <b>{esc(agent['current_task'])}</b> · {esc(agent.get('time_left'))} left"
        else:
            doing = '<span class="wo-muted">no current task</span>'
        chips = "".join(f'<span class="wo-chip">{esc(c)}</span>' for c in agent.get("capabilities", ()))
        cards.append(
            f'<div class="wo-card" data-agent="{esc(agent.get("name"))}" data-status="{esc(status)}">'
            f'<div class="wo-card-head"><b>{esc(agent.get("name"))}</b>'
            f'<span class="wo-pill" style="background:{colour}">{esc(status)}</span></div>'
            f'<div class="wo-card-line">{doing}</div>'
            f'<div class="wo-card-line">speed {esc(agent.get("speed"))} · cost {esc(number(agent.get("cost")))}'
            f"/unit · reliability {esc(number(agent.get('reliability')))} · spent "
            f"{esc(number(spent.get(str(agent.get('name')), 0.0)))}</div>"
            f'<div class="wo-chips">{chips}</div></div>'
        )
    return f'<div class="wo-cards">{"".join(cards)}</div>'


def gauge(label: str, used: float, total: float | None, key: str = "", spending: bool = True) -> str:
    """A bar for ``used`` of ``total``; a spending gauge turns amber, then red, as it runs out."""
    if total:
        fraction = max(0.0, min(used / total, 1.0))
        if spending:
            colour = "#2da44e" if fraction < 0.7 else "#d4a72c" if fraction < 0.9 else "#cf222e"
        else:
            colour = "#0969da"
        text = f"{number(used)} / {number(total)}"
    else:
        fraction, colour, text = 0.0, "#8c959f", f"{number(used)} (no limit)"
    return (
        f'<div class="wo-gauge" data-gauge="{esc(key or label)}"><div class="wo-gauge-label">{esc(label)}'
        f'<span>{esc(text)}</span></div><div class="wo-gauge-track"><div class="wo-gauge-fill" '
        f'style="width:{fraction * 100:.1f}%;background:{colour}"></div></div></div>'
    )


def gauges_html(observation: Observation) -> str:
    if not observation:
        return ""
    if observation.get("canvas"):
        # A canvas task: rounds (steps) and a token budget, nothing of time, capacity or subtasks.
        return (
            '<div class="wo-gauges">'
            + gauge("Rounds", observation.get("step_count") or 0, observation.get("step_limit"), key="steps")
            + gauge("Budget (tokens)", observation.get("budget_used") or 0, observation.get("budget"), key="budget")
            + "</div>"
        )
    parts = [gauge("Time", observation.get("time_used") or 0, observation.get("time_limit"), key="time")]
    if observation.get("step_limit"):
        parts.append(gauge("Steps", observation.get("step_count") or 0, observation.get("step_limit"), key="steps"))
    parts.append(gauge("Budget", observation.get("budget_used") or 0.0, observation.get("budget"), key="budget"))
    parts.append(
        gauge(
            "Capacity in use",
            observation.get("active_count") or 0,
            observation.get("capacity"),
            key="capacity",
            spending=False,
        )
    )
    parts.append(
        gauge(
            "Completed",
            observation.get("completed_count") or 0,
            observation.get("subtask_count"),
            key="completed",
            spending=False,
        )
    )
    return f'<div class="wo-gauges">{"".join(parts)}</div>'


def notice_html(notice: str) -> str:
    return f'<div class="wo-notice" id="wo-notice" role="status">{esc(notice)}</div>' if notice else ""


def hint_html(observation: Observation, notice: str = "") -> str:
    parts = []
    if notice:
        parts.append(f'<div class="wo-notice" id="wo-notice">{esc(notice)}</div>')
    if observation:
        parts.append(f'<div class="wo-hint"><b>Hint</b> {esc(observation.get("hint", ""))}</div>')
        errors = observation.get("errors") or []
        if errors:
            items = "".join(f"<li><code>{esc(e.get('code'))}</code> {esc(e.get('message'))}</li>" for e in errors)
            parts.append(f'<div class="wo-errors"><b>Last action was invalid</b><ul>{items}</ul></div>')
        breakdown = {k: v for k, v in (observation.get("reward_breakdown") or {}).items() if v}
        if observation.get("step_count"):
            channels = ", ".join(f"{esc(k)} {v:+.3f}" for k, v in breakdown.items()) or "no channel"
            parts.append(
                f'<div class="wo-reward-line">Last reward <b>{float(observation.get("reward") or 0):+.3f}</b>'
                f" ({channels})</div>"
            )
    return "".join(parts)


def status_html(
    observation: Observation,
    episode_id: str | None,
    mode: str,
    replay_position: tuple[int, int] | None = None,
    grade: Mapping[str, Any] | None = None,
    statuses: Sequence[DeadlineStatus] = (),
    task: Mapping[str, Any] | None = None,
    share: str = "",
    export: str = "",
) -> str:
    """The summary bar: which episode, where it stands, and its score with where points were lost.

    ``task`` is the registry's entry of the task (title, description);
    ``share`` is a relative link that opens this episode's view, ``export``
    one that downloads it as JSON.
    """
    if not observation:
        return '<div class="wo-status" data-mode="empty" data-done="false">No episode yet.</div>'
    done = bool(observation.get("done"))
    if observation.get("terminated"):
        phase = "finished"
    elif observation.get("truncated"):
        phase = "finished (out of time or steps)"
    else:
        phase = "running"
    badge = {"replay": "REPLAY", "watch": "WATCHING"}.get(mode, "LIVE")
    if replay_position:
        where = f"step <b>{replay_position[0]}</b> of {replay_position[1]}"
    else:
        where = f"step <b>{esc(observation.get('step_count'))}</b>"
    limit = observation.get("time_limit")
    if "time_used" in observation:
        clock = f" · t=<b>{esc(observation.get('time_used'))}</b>" + (f" of {esc(limit)}" if limit else "")
    else:  # a canvas task counts rounds, not time
        clock = f" · {esc(observation.get('rounds_left'))} rounds left"
    task = task or {}
    title = f" — {esc(task['title'])}" if task.get("title") else ""
    head = (
        f'<div class="wo-status" data-mode="{mode}" data-done="{str(done).lower()}">'
        f'<span class="wo-badge wo-badge-{mode}">{badge}</span> task <b>{esc(observation.get("task_id"))}</b>'
        f"{title} · seed {esc(observation.get('seed'))} · {where}{clock} · {phase} · episode "
        f'<code id="wo-episode-id">{esc(episode_id or "–")}</code></div>'
    )
    description = (
        f'<div class="wo-description" id="wo-description">{esc(task["description"])}</div>'
        if task.get("description")
        else ""
    )
    if grade:
        outcome = score_line(grade)
    else:
        outcome = risk_line(observation, statuses)
    links = ""
    if episode_id:
        links = (
            f'<div class="wo-links"><a id="wo-share-link" href="{esc(share or "?")}">link to this view</a>'
            f'<a id="wo-export" href="{esc(export)}" download="episode-{esc(episode_id)}.json">'
            "download the episode (JSON)</a></div>"
        )
    return f'<div class="wo-summary">{head}{description}{outcome}{links}</div>'


def lost_points(grade: Mapping[str, Any], count: int = 3) -> list[tuple[str, float]]:
    """The dimensions that cost the most score, as ``(name, points lost)``, largest first."""
    breakdown = grade.get("breakdown") or {}
    weights = grade.get("weights") or {}
    losses = [
        (name, float(weights.get(name) or 0.0) * (1.0 - float(value or 0.0))) for name, value in breakdown.items()
    ]
    return sorted((item for item in losses if item[1] >= 0.0005), key=lambda item: -item[1])[:count]


def is_arena_grade(grade: Mapping[str, Any]) -> bool:
    return "on_time" in (grade.get("breakdown") or {})


def is_canvas_grade(grade: Mapping[str, Any]) -> bool:
    """A canvas task's grade (it says which canvas was finished)."""
    return "canvas" in grade


def dimension_help(name: str, grade: Mapping[str, Any]) -> str:
    """What ``name`` measures in ``grade``'s kind of grade."""
    return describe_dimension(name, is_arena_grade(grade), is_canvas_grade(grade))


def score_line(grade: Mapping[str, Any]) -> str:
    normalised = grade.get("normalized_score")
    parts = [f'score <b id="wo-summary-score">{float(grade.get("score", 0.0)):.3f}</b>']
    if normalised is not None:
        parts.append(f'normalised <b id="wo-summary-normalized">{float(normalised):.3f}</b> of the best known')
    lost = lost_points(grade)
    if lost:
        words = "; ".join(
            f'<span class="wo-lost" data-dimension="{esc(name)}"><b>{esc(name.replace("_", " "))}</b> '
            f"−{points:.3f} ({esc(dimension_help(name, grade).rstrip('.'))})</span>"
            for name, points in lost
        )
        parts.append(f"most points lost on: {words}")
    else:
        parts.append("no points lost")
    return f'<div class="wo-outcome" id="wo-summary-grade">{" · ".join(parts)}</div>'


def risk_line(observation: Observation, statuses: Sequence[DeadlineStatus]) -> str:
    budget = observation.get("budget")
    used = observation.get("budget_used") or 0.0
    parts = [f"budget {number(used)} of {number(budget)}" if budget else f"spent {number(used)} (no budget)"]
    if "rounds_left" in observation:
        parts.append(f"{esc(observation.get('rounds_left'))} of {esc(observation.get('step_limit'))} rounds left")
    at_risk = [s for s in statuses if s.state == "open" and (s.due_in or 0) <= 3]
    missed = sum(1 for s in statuses if s.state == "missed")
    if at_risk:
        names = ", ".join(f"{esc(s.subtask_id)} (due in {s.due_in})" for s in at_risk[:4])
        more = f" and {len(at_risk) - 4} more" if len(at_risk) > 4 else ""
        parts.append(f'<span class="wo-dl-missed" id="wo-at-risk">deadlines at risk: {names}{more}</span>')
    elif statuses:
        parts.append("no deadline at risk")
    if missed:
        parts.append(f'<span class="wo-dl-missed">{missed} missed</span>')
    parts.append("the score appears here when the episode ends")
    return f'<div class="wo-outcome" id="wo-summary-risk">{" · ".join(parts)}</div>'


# --------------------------------------------------------------------------- grade


def grade_html(grade: Mapping[str, Any] | None) -> str:
    if not grade:
        return '<div class="wo-muted">The grade appears here when the episode ends.</div>'
    breakdown = grade.get("breakdown") or {}
    weights = grade.get("weights") or {}
    arena = is_arena_grade(grade)
    canvas = is_canvas_grade(grade)
    rows = []
    for name, value in breakdown.items():
        weight = weights.get(name)
        contribution = "" if weight is None or value is None else f"{weight * value:.3f}"
        width = max(0.0, min(float(value or 0.0), 1.0)) * 100
        help_text = dimension_help(name, grade)
        if not arena and not canvas and name in GATED:
            help_text += " " + GATE_NOTE
        rows.append(
            f'<tr data-dimension="{esc(name)}"><td><b>{esc(name.replace("_", " "))}</b>'
            f'<div class="wo-help">{esc(help_text)}</div></td>'
            f"<td>{esc(number(weight, 3))}</td><td>{esc(number(value, 3))}"
            f'<div class="wo-gauge-track"><div class="wo-gauge-fill wo-fill-accent" style="width:{width:.0f}%">'
            f"</div></div></td><td>{contribution}</td></tr>"
        )
    normalised = grade.get("normalized_score")
    extra = ""
    if normalised is not None:
        best = grade.get("best_score") or grade.get("oracle_score")
        extra = (
            f'<div class="wo-score-part">normalised <b id="wo-normalized-score">{float(normalised):.3f}</b>'
            + (f" (best achievable {float(best):.3f})" if best is not None else "")
            + "</div>"
        )
    gate = grade.get("activity_gate")
    counts = grade.get("counts") or {}
    count_text = " · ".join(f"{esc(k.replace('_', ' '))} {esc(number(v))}" for k, v in counts.items())
    return (
        f'<div class="wo-grade" id="wo-grade-card"><div class="wo-score">score <b id="wo-score">'
        f"{float(grade.get('score', 0.0)):.3f}</b></div>{extra}"
        + (
            f'<div class="wo-score-part">{"validity" if canvas else "activity"} gate {esc(number(gate, 3))}'
            + (f'<div class="wo-help">{esc(CANVAS_GATE_NOTE)}</div>' if canvas else "")
            + "</div>"
            if gate is not None
            else ""
        )
        + (final_canvas_html(grade) if canvas else "")
        + '<table class="wo-table"><thead><tr><th>dimension: what it measures</th><th>weight</th><th>value</th>'
        f"<th>weighted</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        f'<div class="wo-muted">{count_text}</div></div>'
    )


def final_canvas_html(grade: Mapping[str, Any]) -> str:
    """The canvas a canvas task's episode finished with, as the grade read it."""
    final = (grade.get("canvas") or {}).get("final_dsl")
    shown = "(none: the episode did not finish)" if final is None else (final or "(empty)")
    return f'<div class="wo-score-part">finished canvas <code id="wo-final-dsl">{esc(shown)}</code></div>'


# --------------------------------------------------------------------------- tables

EVENT_COLUMNS = ["step", "t", "event", "subtask", "agent", "details"]
HISTORY_COLUMNS = ["step", "t", "action", "errors", "reward"]


def event_rows(records: Iterable[Record]) -> list[list[Any]]:
    rows = []
    for record in records:
        details = ", ".join(
            f"{key}={value}" for key, value in record.items() if key not in ("kind", "t", "step", "subtask", "agent")
        )
        rows.append(
            [
                record.get("step"),
                record.get("t"),
                str(record.get("kind")),
                str(record.get("subtask") or ""),
                str(record.get("agent") or ""),
                details,
            ]
        )
    return rows


# The canvas family's actions (tasks canvas/*), described by describe_canvas_action.
CANVAS_ACTIONS = frozenset({"add", "delete", "modify", "set_prompt", "execute", "finish", "xml"})


def describe_action(action: Mapping[str, Any]) -> str:
    kind = str(action.get("action_type"))
    if kind in CANVAS_ACTIONS:
        return describe_canvas_action(action)
    if kind == "dispatch":
        pairs = [f"{a.get('subtask_id')}→{a.get('agent_name') or 'any'}" for a in action.get("assignments") or ()] + [
            f"{t}→any" for t in action.get("task_ids") or ()
        ]
        return f"dispatch {', '.join(pairs)}"
    target = action.get("subtask_id")
    agent = action.get("agent_name")
    return " ".join(part for part in (kind, str(target) if target else "", f"→ {agent}" if agent else "") if part)


def describe_canvas_action(action: Mapping[str, Any]) -> str:
    """A canvas action in a few words, for the step history."""
    kind = str(action.get("action_type"))
    if kind == "add":
        structure = action.get("structure")
        operators = [str(name) for name in action.get("operators") or ()]
        if not structure or structure == "operator":
            what = str(action.get("operator") or (operators[0] if operators else ""))
        elif structure == "parallel":
            what = "[" + ", ".join(operators) + "]"
        elif structure == "conditional" and len(operators) == 3:
            what = f"{operators[0]} ? {operators[1]} : {operators[2]}"
        elif structure == "loop":
            what = "(" + " -> ".join(operators) + f") * {action.get('count', 2)}"
        else:
            what = f"{structure} {', '.join(operators)}"
        where = f" at {action['position']}" if action.get("position") is not None else ""
        style = f" {{{action['prompt']}}}" if action.get("prompt") else ""
        return f"add {what}{style}{where}"
    if kind == "delete":
        return f"delete node {action.get('target')}"
    if kind == "modify":
        what = action.get("operator") or ", ".join(str(name) for name in action.get("operators") or ())
        return f"modify node {action.get('target')} → {what}"
    if kind == "set_prompt":
        return f"set prompt of node {action.get('target')} → {action.get('prompt')}"
    if kind == "finish" and action.get("answer") is not None:
        return f"finish with answer {action.get('answer')}"
    return kind


def history_rows(trace: Sequence[Mapping[str, Any]], rewards: Sequence[float]) -> list[list[Any]]:
    rows = []
    for index, entry in enumerate(trace):
        reward = rewards[index] if index < len(rewards) else None
        rows.append(
            [
                entry.get("step"),
                entry.get("t"),
                describe_action(entry.get("action") or {}),
                ", ".join(
                    str(code) for code in entry.get("errors") or ([entry["error"]] if entry.get("error") else ())
                ),
                None if reward is None else round(reward, 4),
            ]
        )
    return rows


def rows_html(columns: Sequence[str], rows: Sequence[Sequence[Any]], table_id: str, empty: str) -> str:
    """``rows`` as a table of text under ``columns``, in a box that scrolls; the newest row last."""
    if not rows:
        return f'<div class="wo-muted">{esc(empty)}</div>'
    head = "".join(f"<th>{esc(column)}</th>" for column in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{'' if cell is None else esc(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    return (
        f'<div class="wo-scroll wo-rows"><table class="wo-table" id="{table_id}" data-rows="{len(rows)}">'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
    )


def history_html(trace: Sequence[Mapping[str, Any]], rewards: Sequence[float]) -> str:
    """The step history (see :func:`history_rows`) as a table."""
    return rows_html(HISTORY_COLUMNS, history_rows(trace, rewards), "wo-history-table", "No steps yet.")


def events_html(records: Iterable[Record]) -> str:
    """The event log (see :func:`event_rows`) as a table."""
    return rows_html(EVENT_COLUMNS, event_rows(records), "wo-events-table", "No events yet.")


# --------------------------------------------------------------------------- comparison


def compare_html(
    first: Any, second: Any, divergence: int | None, draw_canvas: Callable[[Observation], str] | None = None
) -> str:
    """Two episodes: where their actions first differ, their grades side by side, their Gantts on one time axis.

    ``first`` and ``second`` have ``label``, ``observation``, ``records``,
    ``trace`` and ``grade`` (see ``session.Side``). Canvas episodes show
    their last canvas each, drawn by ``draw_canvas``, instead of a Gantt.
    """
    sides = (first, second)
    if divergence is None:
        where = "The two episodes took the same actions at every step."
    else:
        actions = []
        for side in sides:
            entry = side.trace[divergence - 1] if divergence <= len(side.trace) else None
            actions.append(describe_action(entry.get("action") or {}) if entry else "(no step: it had ended)")
        where = (
            f'They first differ at step <b id="wo-divergence">{divergence}</b>: '
            f"{esc(first.label)} did <code>{esc(actions[0])}</code>, {esc(second.label)} did "
            f"<code>{esc(actions[1])}</code>."
        )
    grades = [side.grade or {} for side in sides]
    names = list(dict.fromkeys([*(grades[0].get("breakdown") or {}), *(grades[1].get("breakdown") or {})]))
    arena = any(is_arena_grade(grade) for grade in grades)
    canvas = any(is_canvas_grade(grade) for grade in grades)

    def value(grade: Mapping[str, Any], name: str) -> float | None:
        found = (grade.get("breakdown") or {}).get(name)
        return None if found is None else float(found)

    rows = []
    for name in names:
        a, b = value(grades[0], name), value(grades[1], name)
        diff = "" if a is None or b is None else f"{b - a:+.3f}"
        rows.append(
            f'<tr data-dimension="{esc(name)}"><td><b>{esc(name.replace("_", " "))}</b>'
            f'<div class="wo-help">{esc(describe_dimension(name, arena, canvas))}</div></td>'
            f"<td>{esc(number(a, 3))}</td><td>{esc(number(b, 3))}</td><td>{diff}</td></tr>"
        )
    scores = [grade.get("score") for grade in grades]
    score_row = (
        '<tr data-dimension="score"><td><b>score</b></td>'
        + "".join(
            f'<td id="wo-compare-score-{index}">{"running" if score is None else f"{float(score):.3f}"}</td>'
            for index, score in enumerate(scores)
        )
        + "<td></td></tr>"
    )
    if draw_canvas is not None and any(side.observation.get("canvas") for side in sides):
        charts = "".join(
            f'<div class="wo-compare-side" data-side="{index}"><h4>{esc(side.label)}: {len(side.trace)} steps, '
            f"its last canvas</h4>{draw_canvas(side.observation)}</div>"
            for index, side in enumerate(sides)
        )
    else:
        statuses = [deadline_statuses(side.observation, side.records) for side in sides]
        horizon = max(gantt_horizon(side.observation, side.records, s) for side, s in zip(sides, statuses, strict=True))
        charts = gantt_legend_html() + "".join(
            f'<div class="wo-compare-side" data-side="{index}"><h4>{esc(side.label)}: {len(side.trace)} steps, '
            f"t={esc(side.observation.get('time_used'))}</h4>"
            f"{gantt_svg(side.observation, side.records, statuses[index], horizon=horizon, legend=False)}</div>"
            for index, side in enumerate(sides)
        )
    return (
        f'<div class="wo-compare" id="wo-compare-result"><div class="wo-outcome">{where}</div>'
        f'<table class="wo-table"><thead><tr><th>dimension</th><th>{esc(first.label)}</th>'
        f"<th>{esc(second.label)}</th><th>difference</th></tr></thead><tbody>{score_row}{''.join(rows)}"
        f"</tbody></table>{charts}</div>"
    )
