"""Pictures of a canvas episode (tasks ``canvas/*``): the canvas as a graph of
operators, the last execution's feedback, the problem, the operator library
and what the finish rules ask of the canvas.

Pure functions of the observation (its ``canvas`` view), like :mod:`.views`:
every text goes through :func:`.views.esc`; an operator's box has a fixed
pair of colours by its role (contrast at least 4.5:1), and whatever sits on
the page's background takes the theme's colours from the style sheet.

The graph reads left to right, from the problem to the answer: one column
per node of the canvas; a parallel structure fans out into its branches and
joins again; a conditional runs its checker, then the branch taken when the
checker flagged the answer (above) or the other one (below); a loop is a
dashed frame around its body, with its count and an arrow back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .views import FONT, esc, number

Observation = Mapping[str, Any]

CANVAS_VIEW = "canvas"

# Role -> (fill, text, stroke); the text has a contrast of at least 4.5:1 on the fill.
ROLE_COLOURS: dict[str, tuple[str, str, str]] = {
    "planner": ("#ddf4ff", "#0a3069", "#0969da"),
    "solver": ("#dafbe1", "#0f4a1f", "#1a7f37"),
    "checker": ("#fff8c5", "#4d2d00", "#9a6700"),
    "reviser": ("#fbefff", "#512a97", "#8250df"),
    "ensemble": ("#ffebe9", "#82071e", "#cf222e"),
    "formatter": ("#eaeef2", "#24292f", "#57606a"),
}
ROLE_WORDS: dict[str, str] = {
    "planner": "planner: guides the solvers after it",
    "solver": "solver: writes an answer",
    "checker": "checker: flags a wrong answer",
    "reviser": "reviser: fixes a flagged answer",
    "ensemble": "ensemble: votes over parallel answers",
    "formatter": "formatter: puts the answer in form",
}
UNKNOWN_ROLE = ("#eaeef2", "#24292f", "#57606a")

FONT_PX = 13
SMALL_PX = 12
BOX_H = 32
ROW = 46  # vertical distance between two branches
GAP = 34  # horizontal room for an arrow between two columns
PAD = 16


def is_canvas(observation: Observation | None) -> bool:
    """Whether ``observation`` is a canvas episode's (it carries the ``canvas`` view)."""
    return bool(observation) and isinstance(observation.get(CANVAS_VIEW), Mapping)  # type: ignore[union-attr]


def roles_of(view: Mapping[str, Any]) -> dict[str, str]:
    return {str(op.get("name")): str(op.get("role")) for op in view.get("operators") or ()}


def box_width(name: str) -> int:
    """Room for ``name`` at :data:`FONT_PX` (a generous 8 px a character) and some padding."""
    return max(84, 8 * len(name) + 22)


class _Svg:
    """The parts of the drawing, collected in order (edges first, so boxes sit on top)."""

    def __init__(self, roles: Mapping[str, str]) -> None:
        self.roles = roles
        self.edges: list[str] = []
        self.shapes: list[str] = []

    def arrow(self, x1: float, y1: float, x2: float, y2: float, label: str = "") -> None:
        if y1 == y2:
            path = f"M{x1:.0f},{y1:.0f} H{x2 - 1:.0f}"
        else:
            middle = (x1 + x2) / 2
            path = f"M{x1:.0f},{y1:.0f} C{middle:.0f},{y1:.0f} {middle:.0f},{y2:.0f} {x2 - 1:.0f},{y2:.0f}"
        self.edges.append(f'<path d="{path}" class="wo-edge-done" fill="none" marker-end="url(#wo-canvas-arrow)"/>')
        if label:
            self.edges.append(
                f'<text x="{(x1 + x2) / 2:.0f}" y="{y2 - 6:.0f}" font-size="{SMALL_PX}" text-anchor="middle" '
                f'class="wo-tm">{esc(label)}</text>'
            )

    def join(self, x1: float, y1: float, x2: float, y2: float) -> None:
        """A line without an arrow head from a branch's end to where the branches meet."""
        middle = (x1 + x2) / 2
        self.edges.append(
            f'<path d="M{x1:.0f},{y1:.0f} C{middle:.0f},{y1:.0f} {middle:.0f},{y2:.0f} {x2:.0f},{y2:.0f}" '
            'class="wo-edge-done" fill="none"/>'
        )

    def box(self, name: str, x: float, y: float) -> float:
        """An operator's box with its left edge at ``x``, centred on ``y``; returns its right edge."""
        role = self.roles.get(name, "")
        fill, ink, stroke = ROLE_COLOURS.get(role, UNKNOWN_ROLE)
        width = box_width(name)
        self.shapes.append(
            f'<g class="wo-op" data-operator="{esc(name)}" data-role="{esc(role)}">'
            f"<title>{esc(name)} ({esc(role or 'unknown role')})</title>"
            f'<rect x="{x:.0f}" y="{y - BOX_H / 2:.0f}" width="{width}" height="{BOX_H}" rx="6" fill="{fill}" '
            f'stroke="{stroke}" stroke-width="1.5"/>'
            f'<text x="{x + width / 2:.0f}" y="{y + 4.5:.0f}" font-size="{FONT_PX}" font-weight="600" '
            f'text-anchor="middle" fill="{ink}">{esc(name)}</text></g>'
        )
        return x + width

    def pill(self, text: str, x: float, y: float) -> float:
        width = 8 * len(text) + 18
        self.shapes.append(
            f'<g class="wo-terminal"><rect x="{x:.0f}" y="{y - 13:.0f}" width="{width}" height="26" rx="13" '
            f'class="wo-terminal-box"/><text x="{x + width / 2:.0f}" y="{y + 4.5:.0f}" font-size="{SMALL_PX}" '
            f'text-anchor="middle" class="wo-t">{esc(text)}</text></g>'
        )
        return x + width


def _node_height(node: Mapping[str, Any]) -> int:
    kind = node.get("kind")
    if kind == "parallel":
        return len(node.get("operators") or ()) * ROW
    if kind == "conditional":
        return 2 * ROW + 10
    return ROW + (24 if kind == "loop" else 0)


def _node_width(node: Mapping[str, Any]) -> int:
    kind = node.get("kind")
    operators = [str(name) for name in node.get("operators") or ()]
    if kind == "parallel":
        return max(map(box_width, operators)) + 2 * GAP
    if kind == "conditional":
        return box_width(operators[0]) + GAP + 60 + max(box_width(operators[1]), box_width(operators[2])) + GAP
    if kind == "loop":
        return sum(map(box_width, operators)) + GAP * (len(operators) - 1) + 2 * 18
    return box_width(operators[0]) if operators else 84


def _draw_node(svg: _Svg, node: Mapping[str, Any], x: float, mid: float) -> tuple[float, float]:
    """Draws ``node`` from ``x`` on the middle line ``mid``: where its input arrow ends and where its output starts."""
    kind = node.get("kind")
    operators = [str(name) for name in node.get("operators") or ()]
    if kind == "parallel":
        width = _node_width(node)
        top = mid - (len(operators) - 1) * ROW / 2
        split, join = x, x + width
        for index, name in enumerate(operators):
            y = top + index * ROW
            left = x + (width - box_width(name)) / 2
            svg.arrow(split, mid, left, y)
            right = svg.box(name, left, y)
            svg.join(right, y, join, mid)
        svg.shapes.append(f'<circle cx="{split:.0f}" cy="{mid:.0f}" r="4" class="wo-joint"/>')
        svg.shapes.append(f'<circle cx="{join:.0f}" cy="{mid:.0f}" r="4" class="wo-joint"/>')
        return split, join
    if kind == "conditional":
        checker, flagged, otherwise = operators[:3]
        after_check = svg.box(checker, x, mid)
        branch_x = after_check + GAP + 60
        widest = max(box_width(flagged), box_width(otherwise))
        join = branch_x + widest + GAP
        for name, y, label in ((flagged, mid - ROW / 2 - 5, "flagged"), (otherwise, mid + ROW / 2 + 5, "else")):
            left = branch_x + (widest - box_width(name)) / 2
            svg.arrow(after_check, mid, left, y, label)
            right = svg.box(name, left, y)
            svg.join(right, y, join, mid)
        svg.shapes.append(f'<circle cx="{join:.0f}" cy="{mid:.0f}" r="4" class="wo-joint"/>')
        return x, join
    if kind == "loop":
        width = _node_width(node)
        frame_top = mid - BOX_H / 2 - 22
        frame_bottom = mid + BOX_H / 2 + 22
        svg.shapes.insert(
            0,
            f'<rect x="{x:.0f}" y="{frame_top:.0f}" width="{width:.0f}" height="{frame_bottom - frame_top:.0f}" '
            'rx="10" class="wo-loop-frame" fill="none" stroke-dasharray="6 4"/>',
        )
        svg.shapes.append(
            f'<text x="{x + width - 8:.0f}" y="{frame_bottom - 6:.0f}" font-size="{SMALL_PX}" text-anchor="end" '
            f'class="wo-t wo-loop-count" font-weight="700">repeat x{esc(node.get("count", 2))}</text>'
        )
        cursor = x + 18
        first_left = cursor
        last_right = cursor
        for index, name in enumerate(operators):
            if index:
                svg.arrow(last_right, mid, cursor, mid)
            last_right = svg.box(name, cursor, mid)
            cursor = last_right + GAP
        # The way back: from the body's end over its top to its start.
        svg.edges.append(
            f'<path d="M{last_right - 10:.0f},{mid - BOX_H / 2:.0f} C{last_right - 10:.0f},{frame_top + 2:.0f} '
            f'{first_left + 10:.0f},{frame_top + 2:.0f} {first_left + 10:.0f},{mid - BOX_H / 2 - 1:.0f}" '
            'class="wo-edge-done" fill="none" stroke-dasharray="3 3" marker-end="url(#wo-canvas-arrow)"/>'
        )
        return x, x + width
    right = svg.box(operators[0] if operators else "?", x, mid)
    return x, right


def canvas_svg(observation: Observation) -> str:
    """The canvas as a graph of operators, from the problem to the answer, redrawn at every edit."""
    view = observation.get(CANVAS_VIEW) or {}
    nodes: Sequence[Mapping[str, Any]] = view.get("nodes") or ()
    svg = _Svg(roles_of(view))
    height = max([ROW + 24, *(_node_height(node) for node in nodes)]) + 2 * PAD + 44
    mid = PAD + 26 + (height - 2 * PAD - 44) / 2
    x = svg.pill("problem", PAD, mid)
    if not nodes:
        svg.arrow(x, mid, x + GAP, mid)
        x += GAP
        svg.shapes.append(
            f'<text x="{x + 6:.0f}" y="{mid + 4.5:.0f}" font-size="{FONT_PX}" class="wo-tm">'
            "empty canvas: add an operator or a structure</text>"
        )
        x += 310
    for node in nodes:
        start = x + GAP
        entry, exit_ = _draw_node(svg, node, start, mid)
        svg.arrow(x, mid, entry, mid)
        top = mid - _node_height(node) / 2 - 6
        svg.shapes.append(
            f'<text x="{start:.0f}" y="{min(top, mid - BOX_H / 2 - 8):.0f}" font-size="{SMALL_PX}" '
            f'class="wo-tm wo-node-number" data-id="{esc(node.get("id"))}">node {esc(node.get("id"))}</text>'
        )
        prompt = node.get("prompt")
        if prompt not in (None, "default"):
            # The prompt style under the node (the height leaves a line's room below every node).
            svg.shapes.append(
                f'<text x="{start:.0f}" y="{mid + max(_node_height(node) / 2, BOX_H / 2 + 4) + 14:.0f}" '
                f'font-size="{SMALL_PX}" class="wo-tm wo-node-prompt">prompt {esc(prompt)}</text>'
            )
        x = exit_
    svg.arrow(x, mid, x + GAP, mid)
    x = svg.pill("answer", x + GAP, mid)
    width = int(x + PAD)
    executed = view.get("last_execution") or {}
    state = "executed" if executed.get("current") else ("changed since executed" if executed else "not executed")
    kinds = ",".join(str(node.get("kind")) for node in nodes)
    return (
        f'<div class="wo-dag-scroll wo-canvas-scroll"><svg xmlns="http://www.w3.org/2000/svg" class="wo-canvas" '
        f'viewBox="0 0 {width} {height:.0f}" width="{width}" height="{height:.0f}" '
        f'style="font-family:{FONT};display:block" role="img" '
        f'aria-label="the canvas: {esc(view.get("dsl") or "empty")}" '
        f'data-step="{esc(observation.get("step_count"))}" data-nodes="{len(nodes)}" data-kinds="{esc(kinds)}" '
        f'data-dsl="{esc(view.get("dsl") or "")}" data-state="{esc(state)}">'
        '<defs><marker id="wo-canvas-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" class="wo-arrow-head"/></marker></defs>'
        f"{''.join(svg.edges)}{''.join(svg.shapes)}</svg></div>"
        f'<div class="wo-canvas-dsl"><span class="wo-muted">DSL</span> <code id="wo-canvas-dsl">'
        f'{esc(view.get("dsl") or "(empty)")}</code> <span class="wo-muted">({esc(state)})</span></div>'
        + canvas_legend_html()
    )


def canvas_legend_html() -> str:
    keys = "".join(
        f'<span class="wo-key"><i class="wo-swatch" style="background:{fill};border:1.5px solid {stroke}"></i>'
        f"{esc(words)}</span>"
        for role, words in ROLE_WORDS.items()
        for fill, _, stroke in (ROLE_COLOURS[role],)
    )
    return f'<div class="wo-legend" id="wo-canvas-legend">{keys}</div>'


def problem_html(observation: Observation) -> str:
    """The problem the canvas is built for, the last action's errors and the last reward (the hint's place)."""
    view = observation.get(CANVAS_VIEW) or {}
    problem = view.get("problem") or {}
    facts = [f"{esc(problem.get('type'))}, {esc(problem.get('difficulty'))}"]
    if problem.get("entry_point"):
        facts.append(
            f"entry point <code>{esc(problem['entry_point'])}</code>, {esc(problem.get('test_count', 0))} tests"
        )
    if problem.get("verbose"):
        facts.append("the answer must be put in form")
    parts = [
        f'<div class="wo-hint" id="wo-problem"><b>Problem</b> ({"; ".join(facts)}) {esc(problem.get("text", ""))}</div>'
    ]
    errors = observation.get("errors") or []
    if errors:
        items = "".join(f"<li><code>{esc(e.get('code'))}</code> {esc(e.get('message'))}</li>" for e in errors)
        parts.append(f'<div class="wo-errors"><b>Last action was invalid</b><ul>{items}</ul></div>')
    if observation.get("step_count"):
        breakdown = {k: v for k, v in (observation.get("reward_breakdown") or {}).items() if v}
        channels = ", ".join(f"{esc(k)} {v:+.3f}" for k, v in breakdown.items()) or "no channel"
        parts.append(
            f'<div class="wo-reward-line">Last reward <b>{float(observation.get("reward") or 0):+.3f}</b>'
            f" ({channels})</div>"
        )
    answer = view.get("answer")
    if answer is not None:
        parts.append(f'<div class="wo-reward-line">Finished with the answer <code>{esc(answer)}</code></div>')
    return "".join(parts)


def execution_html(observation: Observation) -> str:
    """The last execution's feedback: what ran, what each node did, the answer, the verdict, tokens and latency."""
    view = observation.get(CANVAS_VIEW) or {}
    run = view.get("last_execution")
    heading = '<h3 class="wo-heading">Last execution</h3>'
    if not run:
        return (
            heading + '<div class="wo-muted" id="wo-execution" data-state="none">Not executed yet: '
            "execute the canvas to read its feedback (each execution spends tokens of the budget).</div>"
        )
    outputs = "".join(f"<li>{esc(line)}</li>" for line in run.get("outputs") or ())
    latency_limit = view.get("latency_limit")
    current = bool(run.get("current"))
    changed = "" if current else ' <span class="wo-dl-open">(the canvas changed since)</span>'
    return (
        heading + f'<div class="wo-exec wo-card" id="wo-execution" data-state="{"current" if current else "stale"}">'
        f'<div class="wo-card-line">Executed <code>{esc(run.get("dsl"))}</code>{changed}</div>'
        f'<div class="wo-card-line">Verdict: <b id="wo-verdict">{esc(run.get("verdict"))}</b></div>'
        f'<div class="wo-card-line">Answer: <code id="wo-exec-answer">{esc(run.get("answer"))}</code></div>'
        f'<div class="wo-card-line">{esc(number(run.get("tokens")))} tokens · latency '
        f"{esc(number(run.get('latency')))} s"
        + (f" of {esc(number(latency_limit))} s allowed" if latency_limit else "")
        + f'</div><ul class="wo-exec-outputs">{outputs}</ul></div>'
    )


def operators_html(observation: Observation) -> str:
    """The operator library: what each operator does, and its public cost in tokens and seconds."""
    view = observation.get(CANVAS_VIEW) or {}
    cards = []
    for op in view.get("operators") or ():
        role = str(op.get("role"))
        fill, ink, stroke = ROLE_COLOURS.get(role, UNKNOWN_ROLE)
        cards.append(
            f'<div class="wo-card" data-operator="{esc(op.get("name"))}"><div class="wo-card-head">'
            f"<b>{esc(op.get('name'))}</b>"
            f'<span class="wo-pill" style="background:{fill};color:{ink};border:1px solid {stroke}">{esc(role)}</span>'
            f'</div><div class="wo-card-line">{esc(op.get("description"))}</div>'
            f'<div class="wo-card-line">~{esc(op.get("tokens"))} tokens · '
            f"~{esc(number(op.get('latency')))} s</div></div>"
        )
    styles = ", ".join(esc(style) for style in view.get("prompt_styles") or ())
    return (
        '<h3 class="wo-heading">Operators</h3>'
        f'<div class="wo-cards" id="wo-operators">{"".join(cards)}</div>'
        f'<div class="wo-muted">Prompt styles: {styles}.</div>'
    )


def statistics_html(observation: Observation) -> str:
    """What the canvas holds, and whether it has what a finished canvas needs to earn a score."""
    view = observation.get(CANVAS_VIEW) or {}
    stats = view.get("statistics") or {}
    needs = [
        ("a solver", bool(stats.get("has_solver")), True),
        ("a checker", bool(stats.get("has_checker")), True),
        ("Test (the problem has tests)", bool(stats.get("has_test")), bool(stats.get("needs_test"))),
    ]
    rows = "".join(
        f'<tr data-rule="{esc(name)}"><td>{esc(name)}</td><td class="{"wo-dl-met" if has else "wo-dl-missed"}">'
        f"{'yes' if has else 'missing'}</td></tr>"
        for name, has, needed in needs
        if needed
    )
    structures = ", ".join(stats.get("structures") or ()) or "none"
    grammar = view.get("grammar") or {}
    return (
        '<h3 class="wo-heading">What a finished canvas needs</h3>'
        f'<table class="wo-table" id="wo-canvas-rules"><tbody>{rows}</tbody></table>'
        f'<div class="wo-muted">{esc(stats.get("nodes", 0))} of {esc(grammar.get("max_nodes", "?"))} nodes · '
        f"{esc(stats.get('operators', 0))} operators · structures: {esc(structures)}. Without these the score "
        "is 0; the canvas must also have been executed as it is finished.</div>"
    )
