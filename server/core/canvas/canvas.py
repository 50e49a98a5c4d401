"""The canvas: a sequence of nodes (an operator, or a ``parallel``,
``conditional`` or ``loop`` structure of operators), its DSL, and its edits.

DSL (round-trips with :func:`parse_dsl`)::

    Plan -> [Programmer, AnswerGenerate, Custom] -> ScEnsemble -> Test ? Revise : Format
    Decompose{step_by_step} -> AnswerGenerate -> (Review -> Revise) * 2

``A -> B`` runs in order; ``[A, B]`` runs branches on the same input;
``C ? T : F`` runs checker ``C``, then ``T`` when it flagged the answer, else
``F``; ``(A -> B) * n`` runs its body ``n`` times; ``{style}`` after a node is
its prompt style (none: ``default``).

Edits never raise: a bad one returns an :class:`EditError` and the canvas is
unchanged. Positions (``position``, ``target``) count top-level nodes from 1.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .operators import (
    CHECKER,
    CONDITIONAL,
    DEFAULT_STYLE,
    ENSEMBLE,
    FORMATTER,
    GRAMMAR,
    LOOP,
    OPERATOR,
    OPERATOR_INFO,
    PARALLEL,
    PROMPT_STYLES,
    ROLE,
    SOLVER,
    STRUCTURES,
    Grammar,
)


@dataclass(frozen=True, slots=True)
class Node:
    kind: str  # operator, parallel, conditional or loop
    operators: tuple[str, ...]  # one (operator); branches; (checker, if flagged, else); the loop's body
    count: int = 1  # a loop's iterations
    style: str = DEFAULT_STYLE

    def dsl(self) -> str:
        ops = self.operators
        if self.kind == OPERATOR:
            text = ops[0]
        elif self.kind == PARALLEL:
            text = "[" + ", ".join(ops) + "]"
        elif self.kind == CONDITIONAL:
            text = f"{ops[0]} ? {ops[1]} : {ops[2]}"
        else:
            text = "(" + " -> ".join(ops) + f") * {self.count}"
        return text if self.style == DEFAULT_STYLE else text + "{" + self.style + "}"

    def view(self, position: int) -> dict[str, Any]:
        view: dict[str, Any] = {"id": position, "kind": self.kind, "operators": list(self.operators)}
        if self.kind == LOOP:
            view["count"] = self.count
        view["prompt"] = self.style
        return view


Canvas = tuple[Node, ...]
EMPTY: Canvas = ()


class EditError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def render_dsl(canvas: Canvas) -> str:
    return " -> ".join(node.dsl() for node in canvas)


# ------------------------------------------------------------------ structure checks


def make_node(
    kind: str, operators: tuple[str, ...], count: int = 1, style: str = DEFAULT_STYLE, grammar: Grammar = GRAMMAR
) -> Node:
    """A node, checked against the grammar (:class:`EditError` when it is not one)."""
    for name in operators:
        if name not in OPERATOR_INFO:
            raise EditError("unknown_operator", f"unknown operator {name!r}")
    if style not in PROMPT_STYLES:
        raise EditError("unknown_prompt_style", f"unknown prompt style {style!r}; known: {', '.join(PROMPT_STYLES)}")
    if kind == OPERATOR:
        if len(operators) != 1:
            raise EditError("bad_structure", "an operator node has exactly one operator")
        return Node(OPERATOR, operators, 1, style)
    if kind == PARALLEL:
        if not grammar.min_parallel <= len(operators) <= grammar.max_parallel:
            raise EditError(
                "bad_structure", f"a parallel structure has {grammar.min_parallel} to {grammar.max_parallel} branches"
            )
        return Node(PARALLEL, operators, 1, style)
    if kind == CONDITIONAL:
        if len(operators) != 3:
            raise EditError("bad_structure", "a conditional has a checker, a branch if flagged and one if not")
        if ROLE[operators[0]] != CHECKER:
            raise EditError("bad_structure", f"a conditional's condition is a checker, not {operators[0]!r}")
        return Node(CONDITIONAL, operators, 1, style)
    if kind == LOOP:
        if not 1 <= len(operators) <= grammar.max_loop_body:
            raise EditError("bad_structure", f"a loop's body has 1 to {grammar.max_loop_body} operators")
        if isinstance(count, bool) or not isinstance(count, int):
            raise EditError("bad_structure", "a loop's count is an integer")
        if not grammar.min_loop_count <= count <= grammar.max_loop_count:
            raise EditError("bad_structure", f"a loop runs {grammar.min_loop_count} to {grammar.max_loop_count} times")
        return Node(LOOP, operators, count, style)
    raise EditError("unknown_structure", f"unknown structure {kind!r}; known: {', '.join(STRUCTURES)}")


# ------------------------------------------------------------------------ the DSL

_TOKEN = re.compile(r"\s*(->|[\[\](),?:*]|\{[a-z_]+\}|[A-Za-z_][A-Za-z0-9_]*|\d+)")


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise EditError("bad_structure", f"cannot read the DSL at {text[pos : pos + 20]!r}")
        out.append(match.group(1))
        pos = match.end()
    return out


def parse_dsl(text: str, grammar: Grammar = GRAMMAR) -> Canvas:
    """The canvas a DSL text describes (:class:`EditError` when it is not one)."""
    tokens = _tokens(text)
    if not tokens:
        return EMPTY
    nodes: list[Node] = []
    i = 0

    def expect(token: str) -> None:
        nonlocal i
        if i >= len(tokens) or tokens[i] != token:
            found = tokens[i] if i < len(tokens) else "the end"
            raise EditError("bad_structure", f"expected {token!r} in the DSL, found {found!r}")
        i += 1

    def name() -> str:
        nonlocal i
        if i >= len(tokens) or not tokens[i][0].isalpha():
            raise EditError("bad_structure", "expected an operator name in the DSL")
        i += 1
        return tokens[i - 1]

    while True:
        if i < len(tokens) and tokens[i] == "[":
            i += 1
            branches = [name()]
            while i < len(tokens) and tokens[i] == ",":
                i += 1
                branches.append(name())
            expect("]")
            kind, operators, count = PARALLEL, tuple(branches), 1
        elif i < len(tokens) and tokens[i] == "(":
            i += 1
            body = [name()]
            while i < len(tokens) and tokens[i] == "->":
                i += 1
                body.append(name())
            expect(")")
            expect("*")
            if i >= len(tokens) or not tokens[i].isdigit():
                raise EditError("bad_structure", "expected a loop count in the DSL")
            count = int(tokens[i])
            i += 1
            kind, operators = LOOP, tuple(body)
        else:
            first = name()
            if i < len(tokens) and tokens[i] == "?":
                i += 1
                if_flagged = name()
                expect(":")
                otherwise = name()
                kind, operators, count = CONDITIONAL, (first, if_flagged, otherwise), 1
            else:
                kind, operators, count = OPERATOR, (first,), 1
        style = DEFAULT_STYLE
        if i < len(tokens) and tokens[i].startswith("{"):
            style = tokens[i][1:-1]
            i += 1
        nodes.append(make_node(kind, operators, count, style, grammar))
        if i == len(tokens):
            break
        expect("->")
    if len(nodes) > grammar.max_nodes:
        raise EditError("canvas_full", f"a canvas has at most {grammar.max_nodes} nodes")
    return tuple(nodes)


# -------------------------------------------------------------------------- edits


def _target(canvas: Canvas, action: Mapping[str, Any]) -> int:
    target = action.get("target")
    if target is None:
        raise EditError("missing_field", f"{action.get('action_type')} needs target (a node's position, from 1)")
    if isinstance(target, bool) or not isinstance(target, int) or not 1 <= target <= len(canvas):
        raise EditError("unknown_target", f"no node {target!r}; nodes are 1 to {len(canvas)}")
    return target - 1


def _operators_of(action: Mapping[str, Any]) -> tuple[str, ...]:
    operators = action.get("operators")
    if operators is None:
        operator = action.get("operator")
        if operator is None:
            raise EditError("missing_field", "give operator (a name) or operators (a list of names)")
        operators = [operator]
    if isinstance(operators, str) or not isinstance(operators, (list, tuple)):
        raise EditError("bad_structure", "operators is a list of operator names")
    names = tuple(str(name) for name in operators)
    for name in names:
        if name not in OPERATOR_INFO:
            raise EditError("unknown_operator", f"unknown operator {name!r}")
    return names


def _style_of(action: Mapping[str, Any], default: str = DEFAULT_STYLE) -> str:
    style = action.get("prompt")
    if style is None:
        return default
    if style not in PROMPT_STYLES:
        raise EditError("unknown_prompt_style", f"unknown prompt style {style!r}; known: {', '.join(PROMPT_STYLES)}")
    return str(style)


def apply_edit(canvas: Canvas, action: Mapping[str, Any], grammar: Grammar = GRAMMAR) -> Canvas:
    """The canvas after an ``add``, ``delete``, ``modify`` or ``set_prompt`` action
    (:class:`EditError` when it is refused: the canvas is then unchanged)."""
    kind = action.get("action_type")
    if kind == "add":
        if len(canvas) >= grammar.max_nodes:
            raise EditError("canvas_full", f"a canvas has at most {grammar.max_nodes} nodes; delete one first")
        structure = action.get("structure") or OPERATOR
        count = action.get("count", 2 if structure == LOOP else 1)
        node = make_node(str(structure), _operators_of(action), count, _style_of(action), grammar)
        position = action.get("position")
        if position is None:
            return (*canvas, node)
        if isinstance(position, bool) or not isinstance(position, int) or not 1 <= position <= len(canvas) + 1:
            raise EditError("unknown_target", f"position {position!r} is not between 1 and {len(canvas) + 1}")
        return (*canvas[: position - 1], node, *canvas[position - 1 :])
    if kind == "delete":
        t = _target(canvas, action)
        return (*canvas[:t], *canvas[t + 1 :])
    if kind == "modify":
        t = _target(canvas, action)
        old = canvas[t]
        operators = _operators_of(action) if ("operators" in action or "operator" in action) else old.operators
        count = action.get("count", old.count)
        node = make_node(old.kind, operators, count, _style_of(action, old.style), grammar)
        if node == old:
            raise EditError("unchanged", f"node {t + 1} is already {old.dsl()}")
        return (*canvas[:t], node, *canvas[t + 1 :])
    if kind == "set_prompt":
        t = _target(canvas, action)
        if action.get("prompt") is None:
            raise EditError("missing_field", "set_prompt needs prompt (a prompt style)")
        old = canvas[t]
        node = Node(old.kind, old.operators, old.count, _style_of(action))
        if node == old:
            raise EditError("unchanged", f"node {t + 1} already has prompt {old.style!r}")
        return (*canvas[:t], node, *canvas[t + 1 :])
    raise EditError("unknown_action", f"{kind!r} is not an edit")


# -------------------------------------------------------------------- statistics


def operator_names(canvas: Canvas) -> list[str]:
    """Every operator of the canvas, in order (a loop's body once)."""
    return [name for node in canvas for name in node.operators]


def statistics(canvas: Canvas, problem_type: str, has_tests: bool, verbose: bool) -> dict[str, Any]:
    """What the feedback and the published finish rules count."""
    names = operator_names(canvas)
    roles = {ROLE[name] for name in names}
    structures = sorted({node.kind for node in canvas if node.kind != OPERATOR})
    return {
        "nodes": len(canvas),
        "operators": len(names),
        "structures": structures,
        "has_solver": SOLVER in roles,
        "has_checker": CHECKER in roles,
        "has_ensemble": ENSEMBLE in roles,
        "has_test": "Test" in names,
        "has_format": FORMATTER in roles,
        "needs_test": problem_type == "code" and has_tests,
        "needs_format": verbose,
    }


GateCounts = tuple[bool, bool, bool]  # a solver, a checker, Test: each as the validity gate counts it


def node_contribution(node: Node, voted: bool, answered: bool) -> tuple[GateCounts, bool]:
    """What one node adds to the validity gate's counts, and whether an answer exists after it
    (``voted``: an ensemble right after this parallel structure votes on it; ``answered``: an
    answer exists before it). Only operators that act on the answer count: a checker (``Test``
    too) when there is an answer to check; a parallel structure's solver branches when an
    ensemble votes on them, else its first branch alone (the only one whose work is kept); a
    conditional's flagged branch only when its checker has an answer to check (else only the
    other branch runs); a loop's body in the order it runs, every time."""
    solver = checker = test = False

    def run(name: str) -> None:
        nonlocal solver, checker, test, answered
        role = ROLE[name]
        if role == SOLVER:
            solver = answered = True
        elif role == CHECKER and answered:
            checker = True
            test = test or name == "Test"

    ops = node.operators
    if node.kind == OPERATOR:
        run(ops[0])
    elif node.kind == PARALLEL:
        if voted and any(ROLE[name] == SOLVER for name in ops):
            solver = answered = True
        else:
            run(ops[0])
    elif node.kind == CONDITIONAL:
        if answered:
            run(ops[0])
            run(ops[1])
            run(ops[2])
        else:
            run(ops[2])
    else:
        for _ in range(node.count):
            for name in ops:
                run(name)
    return (solver, checker, test), answered


def gate_counts(canvas: Canvas) -> GateCounts:
    """Whether the canvas has a solver, a checker and ``Test`` as the validity gate counts them:
    only the operators that act on the answer (see :func:`node_contribution`)."""
    solver = checker = test = answered = False
    for i, node in enumerate(canvas):
        following = canvas[i + 1] if i + 1 < len(canvas) else None
        voted = (
            node.kind == PARALLEL
            and following is not None
            and following.kind == OPERATOR
            and ROLE[following.operators[0]] == ENSEMBLE
        )
        (s, c, t), answered = node_contribution(node, voted, answered)
        solver, checker, test = solver or s, checker or c, test or t
    return solver, checker, test


def published_checks(stats: Mapping[str, Any]) -> dict[str, bool]:
    """The published finish rules, each met or not."""
    checks = {
        "five_operators": stats["operators"] >= 5,
        "solver_and_checker": bool(stats["has_solver"] and stats["has_checker"]),
        "structure": bool(stats["structures"]),
    }
    if stats["needs_test"]:
        checks["test"] = bool(stats["has_test"])
    if stats["needs_format"]:
        checks["format"] = bool(stats["has_format"])
    return checks
