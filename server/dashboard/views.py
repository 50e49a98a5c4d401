"""Pictures of an episode as HTML and SVG strings, built on the server.

Every function here is pure: it takes plain data from the core (the
observation, the event log, the action trace, the rewards, the grade) and
returns markup. Everything drawn is inline SVG or HTML with inline styles, so
the page loads nothing from the network, and every piece of text that came
from a task, an agent or a message goes through :func:`esc` first: a subtask
named ``<script>`` is drawn as those eight characters.

The DAG layout uses networkx (layers from its topological generations, then
``multipartite_layout``); it is computed once per workflow shape and cached,
so redrawing the DAG every step only recolours it.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import networkx as nx

from workflow_orchestrator.server.core.formulas import deadline_met, deadline_open

Observation = Mapping[str, Any]
Record = Mapping[str, Any]

# Subtask status -> (fill, text colour). Chosen to read in light and dark mode.
STATUS_COLOURS: dict[str, tuple[str, str]] = {
    "pending": ("#d0d7de", "#24292f"),
    "ready": ("#54aeff", "#0a3069"),
    "in_progress": ("#d4a72c", "#3b2300"),
    "completed": ("#2da44e", "#ffffff"),
    "failed": ("#cf222e", "#ffffff"),
}
AGENT_STATUS_COLOURS: dict[str, str] = {"idle": "#2da44e", "working": "#d4a72c", "offline": "#6e7781"}
OUTCOME_COLOURS: dict[str, str] = {
    "completed": "#2da44e",
    "failed": "#cf222e",
    "aborted": "#8c959f",
    "running": "#d4a72c",
}
DEADLINE_COLOURS: dict[str, str] = {"met": "#1a7f37", "missed": "#cf222e", "open": "#9a6700"}
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
            verdict = f"✓ met (done at t={status.completed_at})"
        elif status.state == "missed":
            verdict = (
                f"✕ missed (done late at t={status.completed_at})"
                if status.completed_at is not None
                else "✕ missed (not completed)"
            )
        else:
            verdict = f"open: due in {status.due_in}" + (" (at risk)" if (status.due_in or 0) <= 2 else "")
        rows.append(
            f'<tr data-deadline="{esc(status.subtask_id)}" data-state="{status.state}">'
            f"<td>{esc(status.subtask_id)}</td><td>t ≤ {status.deadline}</td>"
            f'<td style="color:{DEADLINE_COLOURS[status.state]};font-weight:600">{esc(verdict)}</td></tr>'
        )
    met = sum(1 for status in statuses if status.state == "met")
    missed = sum(1 for status in statuses if status.state == "missed")
    return (
        f'<div class="wo-muted">{met} met · {missed} missed · {len(statuses) - met - missed} open</div>'
        '<div class="wo-scroll"><table class="wo-table" id="wo-deadline-table"><thead><tr><th>subtask</th>'
        f"<th>deadline</th><th>status</th></tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


# --------------------------------------------------------------------------- DAG


@lru_cache(maxsize=256)
def dag_positions(shape: tuple[tuple[str, tuple[str, ...]], ...]) -> dict[str, tuple[int, float]]:
    """Layer and vertical position of every subtask, for a workflow's shape.

    ``shape`` is ``((subtask_id, depends_on), ...)``. Layers are networkx's
    topological generations (a subtask sits one layer after its latest
    dependency); inside a layer, subtasks are ordered by the mean position of
    their dependencies (a barycentre sweep), which keeps edges from crossing
    in the common cases, and ``multipartite_layout`` spreads them.
    """
    graph = nx.DiGraph()
    graph.add_nodes_from(node for node, _ in shape)
    graph.add_edges_from((dep, node) for node, deps in shape for dep in deps if dep in graph)
    layers = [list(generation) for generation in nx.topological_generations(graph)]
    order: dict[str, float] = {}
    declared = {node: index for index, (node, _) in enumerate(shape)}
    for layer in layers:

        def barycentre(node: str) -> tuple[float, int]:
            preds = [order[p] for p in graph.predecessors(node) if p in order]
            return (sum(preds) / len(preds) if preds else float(declared[node]), declared[node])

        layer.sort(key=barycentre)
        for rank, node in enumerate(layer):
            order[node] = float(rank)
    ordered = nx.DiGraph()
    for depth, layer in enumerate(layers):
        for node in layer:
            ordered.add_node(node, layer=depth)
    if len(ordered) == 1:
        only = next(iter(ordered))
        return {only: (0, 0.0)}
    layout = nx.multipartite_layout(ordered, subset_key="layer", align="vertical")
    return {node: (ordered.nodes[node]["layer"], float(layout[node][1])) for node in ordered}


def workflow_shape(subtasks: Sequence[Mapping[str, Any]]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple((s["id"], tuple(s.get("depends_on", ()))) for s in subtasks)


NODE_W, NODE_H, GAP_X, GAP_Y, PAD = 156, 46, 40, 14, 12
MAX_LABELLED_DEADLINES = 6


def dag_svg(observation: Observation, statuses: Sequence[DeadlineStatus] = ()) -> str:
    """The workflow as a layered DAG, each subtask coloured by its status."""
    subtasks = list(observation.get("subtasks", ()))
    if not subtasks:
        return '<div class="wo-muted">No workflow yet: pick a task and press Reset.</div>'
    positions = dag_positions(workflow_shape(subtasks))
    layer_count = max(layer for layer, _ in positions.values()) + 1
    per_layer: dict[int, int] = {}
    for layer, _ in positions.values():
        per_layer[layer] = per_layer.get(layer, 0) + 1
    rows = max(per_layer.values())
    height = PAD * 2 + 22 + rows * NODE_H + (rows - 1) * GAP_Y
    width = PAD * 2 + layer_count * NODE_W + (layer_count - 1) * GAP_X
    ys = [y for _, y in positions.values()]
    low, high = min(ys), max(ys)
    span = (high - low) or 1.0
    usable = height - 2 * PAD - 22 - NODE_H

    def place(node: str) -> tuple[float, float]:
        layer, y = positions[node]
        x = PAD + layer * (NODE_W + GAP_X)
        top = PAD + 22 + (usable * (y - low) / span if high > low else usable / 2)
        return x, top

    deadline_state = {status.subtask_id: status for status in statuses}
    parts = [
        # Shrinks to fit, but not below 70% of its size: a wide workflow scrolls sideways instead
        # of turning its labels into specks.
        f'<svg xmlns="http://www.w3.org/2000/svg" class="wo-dag" viewBox="0 0 {width} {height}" '
        f'width="100%" style="max-width:{width}px;min-width:{int(width * 0.7)}px;font-family:{FONT}" role="img" '
        f'aria-label="workflow DAG" data-step="{esc(observation.get("step_count", 0))}">',
        '<defs><marker id="wo-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#6e7781"/></marker></defs>',
        legend_svg(PAD, PAD + 6),
    ]
    by_id = {s["id"]: s for s in subtasks}
    for subtask in subtasks:
        x2, y2 = place(subtask["id"])
        for dep in subtask.get("depends_on", ()):
            if dep not in by_id:
                continue
            x1, y1 = place(dep)
            sx, sy, ex, ey = x1 + NODE_W, y1 + NODE_H / 2, x2 - 2, y2 + NODE_H / 2
            bend = (ex - sx) / 2
            done = by_id[dep]["status"] == "completed"
            parts.append(
                f'<path d="M{sx:.1f},{sy:.1f} C{sx + bend:.1f},{sy:.1f} {ex - bend:.1f},{ey:.1f} {ex:.1f},{ey:.1f}" '
                f'fill="none" stroke="{"#57606a" if done else "#afb8c1"}" stroke-width="1.6" '
                'marker-end="url(#wo-arrow)"/>'
            )
    for subtask in subtasks:
        x, y = place(subtask["id"])
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
        tooltip = f"{subtask['id']} [{subtask.get('type')}] {status}; attempts {subtask.get('attempts', 0)}" + (
            f"; deadline t={subtask['deadline']}" if subtask.get("deadline") is not None else ""
        )
        parts.append(
            f'<g class="wo-node" data-subtask="{esc(subtask["id"])}" data-status="{esc(status)}">'
            f"<title>{esc(tooltip)}</title>"
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{NODE_W}" height="{NODE_H}" rx="8" fill="{fill}" '
            f'stroke="{"#24292f" if status in ("ready", "in_progress") else fill}" stroke-width="1.5"/>'
            f'<text x="{x + 9:.1f}" y="{y + 19:.1f}" font-size="12" font-weight="600" fill="{ink}">'
            f"{esc(shorten(subtask['id'], 20))}</text>"
            f'<text x="{x + 9:.1f}" y="{y + 36:.1f}" font-size="11" fill="{ink}">{esc(shorten(detail, 24))}</text>'
        )
        if subtask.get("deadline") is not None:
            state = deadline_state.get(subtask["id"])
            colour = DEADLINE_COLOURS[state.state] if state else DEADLINE_COLOURS["open"]
            mark = {"met": "✓", "missed": "✕"}.get(state.state if state else "open", "⏱")
            parts.append(
                f'<rect x="{x + NODE_W - 50:.1f}" y="{y - 8:.1f}" width="50" height="16" rx="8" fill="#ffffff" '
                f'stroke="{colour}"/><text x="{x + NODE_W - 25:.1f}" y="{y + 4:.1f}" font-size="10" '
                f'text-anchor="middle" fill="{colour}" font-weight="700">{mark} t≤{subtask["deadline"]}</text>'
            )
        if subtask.get("failures"):
            parts.append(
                f'<circle cx="{x + 4:.1f}" cy="{y + 4:.1f}" r="8" fill="#82071e"/><text x="{x + 4:.1f}" '
                f'y="{y + 8:.1f}" font-size="10" text-anchor="middle" fill="#ffffff">{len(subtask["failures"])}</text>'
            )
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)


def legend_svg(x: float, y: float) -> str:
    items = []
    offset = 0.0
    for status, (fill, _) in STATUS_COLOURS.items():
        label = status.replace("_", " ")
        items.append(
            f'<rect x="{x + offset:.1f}" y="{y - 9:.1f}" width="11" height="11" rx="2" fill="{fill}"/>'
            f'<text x="{x + offset + 15:.1f}" y="{y:.1f}" font-size="11" fill="#57606a">{label}</text>'
        )
        offset += 24 + 6.5 * len(label)
    return f'<g class="wo-legend">{"".join(items)}</g>'


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


def gantt_svg(
    observation: Observation,
    records: Sequence[Record],
    statuses: Sequence[DeadlineStatus] = (),
) -> str:
    """Agents against time: every attempt so far, failures marked, deadlines and now as lines."""
    agents = [a["name"] for a in observation.get("agents", ())]
    if not agents:
        return '<div class="wo-muted">No schedule yet.</div>'
    now = int(observation.get("time_used") or 0)
    bars, offline = schedule_bars(records, now)
    limit = observation.get("time_limit")
    horizon = max(
        [now + 1, *(b.end for b in bars), *((b.planned_end or 0) for b in bars)] + [s.deadline + 1 for s in statuses]
    )
    if limit:
        horizon = max(horizon, int(limit))
    label_w, row_h, top, right = 150, 30, 26, 16
    width = 900
    plot_w = width - label_w - right
    height = top + row_h * len(agents) + 24
    scale = plot_w / horizon

    def x_of(t: float) -> float:
        return label_w + t * scale

    row_of = {name: index for index, name in enumerate(agents)}
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="wo-gantt" viewBox="0 0 {width} {height}" width="100%" '
        f'style="font-family:{FONT}" role="img" aria-label="schedule" data-bars="{len(bars)}">',
        '<defs><pattern id="wo-hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="6" height="6" fill="#eaeef2"/>'
        '<line x1="0" y1="0" x2="0" y2="6" stroke="#8c959f" stroke-width="2"/></pattern></defs>',
    ]
    tick_every = max(1, round(horizon / 20))
    for t in range(0, horizon + 1, tick_every):
        parts.append(
            f'<line x1="{x_of(t):.1f}" y1="{top - 4}" x2="{x_of(t):.1f}" y2="{top + row_h * len(agents)}" '
            f'stroke="#eaeef2"/><text x="{x_of(t):.1f}" y="{top - 8}" font-size="10" text-anchor="middle" '
            f'fill="#57606a">{t}</text>'
        )
    for name, index in row_of.items():
        y = top + index * row_h
        parts.append(
            f'<rect x="0" y="{y}" width="{width}" height="{row_h}" fill="{"#f6f8fa" if index % 2 else "none"}"/>'
            f'<text x="{label_w - 8}" y="{y + row_h / 2 + 4}" font-size="12" text-anchor="end" fill="#24292f">'
            f"{esc(shorten(name, 19))}</text>"
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
        y = top + row_of[bar.agent] * row_h + 5
        x0, x1 = x_of(bar.start), x_of(bar.end)
        if bar.outcome == "running" and bar.planned_end is not None and bar.planned_end > bar.end:
            parts.append(
                f'<rect x="{x1:.1f}" y="{y}" width="{x_of(bar.planned_end) - x1:.1f}" height="{row_h - 10}" '
                f'rx="3" fill="none" stroke="{OUTCOME_COLOURS["running"]}" stroke-dasharray="4 3"/>'
            )
        tooltip = f"{bar.subtask} on {bar.agent}: t={bar.start}–{bar.end} {bar.outcome} {bar.detail}".strip()
        bar_w = max(x1 - x0, 3.0)
        parts.append(
            f'<g class="wo-bar" data-subtask="{esc(bar.subtask)}" data-agent="{esc(bar.agent)}" '
            f'data-outcome="{bar.outcome}"><title>{esc(tooltip)}</title>'
            f'<rect x="{x0:.1f}" y="{y}" width="{bar_w:.1f}" height="{row_h - 10}" rx="3" '
            f'fill="{OUTCOME_COLOURS[bar.outcome]}"/>'
        )
        if bar_w > 34:
            parts.append(
                f'<text x="{x0 + 4:.1f}" y="{y + row_h / 2}" font-size="10" fill="#ffffff">'
                f"{esc(shorten(bar.subtask, max(int(bar_w / 6.2), 3)))}</text>"
            )
        if bar.outcome == "failed":
            mark = "P" if bar.detail.startswith("permanent") else "✕"
            parts.append(
                f'<circle cx="{x1:.1f}" cy="{y + (row_h - 10) / 2}" r="7" fill="#82071e" stroke="#ffffff"/>'
                f'<text x="{x1:.1f}" y="{y + (row_h - 10) / 2 + 3.5}" font-size="9" text-anchor="middle" '
                f'fill="#ffffff" font-weight="700">{mark}</text>'
            )
        parts.append("</g>")
    bottom = top + row_h * len(agents)
    # A few deadlines get a label under their line; many would overlap, so
    # then each line carries its label as a tooltip only.
    labelled = len(statuses) <= MAX_LABELLED_DEADLINES
    for status in statuses:
        colour = DEADLINE_COLOURS[status.state]
        x = x_of(status.deadline)
        label = f"{status.subtask_id} ≤ {status.deadline} ({status.state})"
        parts.append(
            f'<g class="wo-deadline-line" data-subtask="{esc(status.subtask_id)}" data-state="{status.state}">'
            f"<title>{esc(label)}</title>"
            f'<line x1="{x:.1f}" y1="{top - 2}" x2="{x:.1f}" y2="{bottom}" stroke="{colour}" '
            f'stroke-width="{1.5 if labelled else 1}" stroke-dasharray="5 3"/>'
        )
        if labelled:
            parts.append(
                f'<text x="{x:.1f}" y="{bottom + 12}" font-size="10" text-anchor="middle" fill="{colour}">'
                f"{esc(shorten(status.subtask_id, 18))} ≤ {status.deadline}</text>"
            )
        parts.append("</g>")
    if statuses and not labelled:
        parts.append(
            f'<text x="{label_w}" y="{bottom + 12}" font-size="10" fill="#57606a">{len(statuses)} deadlines as '
            "dashed lines (hover one for its subtask)</text>"
        )
    parts.append(
        f'<line class="wo-now" x1="{x_of(now):.1f}" y1="{top - 4}" x2="{x_of(now):.1f}" y2="{bottom + 2}" '
        f'stroke="#0969da" stroke-width="2"/><text x="{x_of(now) + 3:.1f}" y="{bottom + 22}" font-size="10" '
        f'fill="#0969da">now t={now}</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


# --------------------------------------------------------------------------- rewards


def reward_svg(rewards: Sequence[float]) -> str:
    """Reward per step as bars, with the running total as a line on its own scale."""
    if not rewards:
        return '<div class="wo-muted">No steps yet.</div>'
    width, height, left, right, top, bottom = 560, 200, 44, 44, 14, 24
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
        f'style="font-family:{FONT}" role="img" aria-label="reward per step" data-steps="{len(rewards)}">',
        f'<line x1="{left}" y1="{y_of(0):.1f}" x2="{width - right}" y2="{y_of(0):.1f}" stroke="#8c959f"/>',
        f'<text x="{left - 4}" y="{top + 4}" font-size="10" text-anchor="end" fill="#57606a">{number(high)}</text>',
        f'<text x="{left - 4}" y="{top + plot_h}" font-size="10" text-anchor="end" fill="#57606a">{number(low)}</text>',
        f'<text x="{width - right + 4}" y="{top + 4}" font-size="10" fill="#8250df">{number(t_high)}</text>',
        f'<text x="{width - right + 4}" y="{top + plot_h}" font-size="10" fill="#8250df">{number(t_low)}</text>',
    ]
    for index, value in enumerate(rewards):
        x = left + (index + 0.5) * step_w - bar_w / 2
        y0, y1 = sorted((y_of(0), y_of(value)))
        parts.append(
            f'<rect x="{x:.1f}" y="{y0:.1f}" width="{max(bar_w, 1):.1f}" height="{max(y1 - y0, 1):.1f}" '
            f'fill="{"#2da44e" if value >= 0 else "#cf222e"}"><title>step {index + 1}: {value:+.3f}</title></rect>'
        )
    points = " ".join(f"{left + (index + 0.5) * step_w:.1f},{y_total(total):.1f}" for index, total in enumerate(totals))
    parts.append(f'<polyline points="{points}" fill="none" stroke="#8250df" stroke-width="2"/>')
    label_every = max(1, round(len(rewards) / 12))
    for index in range(0, len(rewards), label_every):
        parts.append(
            f'<text x="{left + (index + 0.5) * step_w:.1f}" y="{height - 8}" font-size="10" text-anchor="middle" '
            f'fill="#57606a">{index + 1}</text>'
        )
    parts.append(
        f'<text x="{left}" y="{height - 0}" font-size="10" fill="#57606a">step · bars: reward · '
        f"line: total {totals[-1]:+.3f}</text></svg>"
    )
    return "".join(parts)


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
    observation: Observation, episode_id: str | None, mode: str, replay_position: tuple[int, int] | None = None
) -> str:
    if not observation:
        return '<div class="wo-status">No episode yet.</div>'
    if observation.get("terminated"):
        phase = "finished (terminated)"
    elif observation.get("truncated"):
        phase = "finished (truncated: out of time or steps)"
    else:
        phase = "running"
    badge = "REPLAY" if mode == "replay" else "LIVE"
    if replay_position:
        where = f"step <b>{replay_position[0]}</b> of {replay_position[1]}"
    else:
        where = f"step <b>{esc(observation.get('step_count'))}</b>"
    return (
        f'<div class="wo-status" data-mode="{mode}" data-done="{str(bool(observation.get("done"))).lower()}">'
        f'<span class="wo-badge wo-badge-{mode}">{badge}</span> episode <code id="wo-episode-id">'
        f"{esc(episode_id or '–')}</code> · task <b>{esc(observation.get('task_id'))}</b> · seed "
        f"{esc(observation.get('seed'))} · {esc(observation.get('time_model'))} time · {where} · {phase}</div>"
    )


# --------------------------------------------------------------------------- grade


def grade_html(grade: Mapping[str, Any] | None) -> str:
    if not grade:
        return '<div class="wo-muted">The grade appears here when the episode ends.</div>'
    breakdown = grade.get("breakdown") or {}
    weights = grade.get("weights") or {}
    rows = []
    for name, value in breakdown.items():
        weight = weights.get(name)
        contribution = "" if weight is None or value is None else f"{weight * value:.3f}"
        width = max(0.0, min(float(value or 0.0), 1.0)) * 100
        rows.append(
            f'<tr data-dimension="{esc(name)}"><td>{esc(name.replace("_", " "))}</td>'
            f"<td>{esc(number(weight, 3))}</td><td>{esc(number(value, 3))}"
            f'<div class="wo-gauge-track"><div class="wo-gauge-fill" style="width:{width:.0f}%;'
            f'background:#0969da"></div></div></td><td>{contribution}</td></tr>'
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
        + (f'<div class="wo-score-part">activity gate {esc(number(gate, 3))}</div>' if gate is not None else "")
        + '<table class="wo-table"><thead><tr><th>dimension</th><th>weight</th><th>value</th>'
        f"<th>weighted</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        f'<div class="wo-muted">{count_text}</div></div>'
    )


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


def describe_action(action: Mapping[str, Any]) -> str:
    kind = str(action.get("action_type"))
    if kind == "dispatch":
        pairs = [f"{a.get('subtask_id')}→{a.get('agent_name') or 'any'}" for a in action.get("assignments") or ()] + [
            f"{t}→any" for t in action.get("task_ids") or ()
        ]
        return f"dispatch {', '.join(pairs)}"
    target = action.get("subtask_id")
    agent = action.get("agent_name")
    return " ".join(part for part in (kind, str(target) if target else "", f"→ {agent}" if agent else "") if part)


def history_rows(trace: Sequence[Mapping[str, Any]], rewards: Sequence[float]) -> list[list[Any]]:
    rows = []
    for index, entry in enumerate(trace):
        reward = rewards[index] if index < len(rewards) else None
        rows.append(
            [
                entry.get("step"),
                entry.get("t"),
                describe_action(entry.get("action") or {}),
                ", ".join(str(code) for code in entry.get("errors") or ()),
                None if reward is None else round(reward, 4),
            ]
        )
    return rows
