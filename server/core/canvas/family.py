"""The canvas family's rules on the seam (``TaskSpec.family`` ``canvas``): its
tables, episode, observation, legal actions, text, grade, rewards, and the
built-in heuristic and template policies' moves."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .canvas import Canvas, Node, parse_dsl, render_dsl, statistics
from .episode import CanvasEpisode, CanvasTables
from .grade import CanvasRewards, PublishedRewards, grade_canvas
from .operators import (
    CHECKERS,
    CONDITIONAL,
    GRAMMAR,
    LOOP,
    OPERATOR,
    OPERATOR_NAMES,
    OPERATORS,
    PARALLEL,
    PROMPT_STYLES,
    SOLVERS,
    catalogue,
)
from .problem import Problem

if TYPE_CHECKING:
    from ..compiled import CompiledTask
    from ..dag import DagIndex
    from ..model import TaskSpec
    from ..rewards import RewardModel

CANVAS_VIEW = "canvas"
DEFAULT_ROUNDS = 20

_CATALOGUE = catalogue()
_GRAMMAR = GRAMMAR.table()
_EXECUTE: dict[str, Any] = {"action_type": "execute"}
_FINISH: dict[str, Any] = {"action_type": "finish"}

# The adds legal_actions lists: every operator, and one structure of each kind per solver or checker.
_ADDS: tuple[dict[str, Any], ...] = (
    *({"action_type": "add", "operator": name} for name in OPERATOR_NAMES),
    *({"action_type": "add", "structure": PARALLEL, "operators": [name] * 3} for name in SOLVERS),
    *({"action_type": "add", "structure": CONDITIONAL, "operators": [name, "Revise", "Format"]} for name in CHECKERS),
    *({"action_type": "add", "structure": LOOP, "operators": [name, "Revise"], "count": 2} for name in CHECKERS),
)
_SAME_ROLE: dict[str, tuple[str, ...]] = {
    op.name: tuple(other.name for other in OPERATORS if other.role == op.role and other.name != op.name)
    for op in OPERATORS
}


def legal_actions(canvas: Canvas, executed: bool) -> list[dict[str, Any]]:
    """Every action listed as legal on ``canvas`` (``executed``: it is the canvas last executed)."""
    legal: list[dict[str, Any]] = []
    if len(canvas) < GRAMMAR.max_nodes:
        legal.extend(_ADDS)
    for i, node in enumerate(canvas, 1):
        legal.append({"action_type": "delete", "target": i})
        if node.kind == OPERATOR:
            legal.extend(
                {"action_type": "modify", "target": i, "operator": other} for other in _SAME_ROLE[node.operators[0]]
            )
        legal.extend({"action_type": "set_prompt", "target": i, "prompt": s} for s in PROMPT_STYLES if s != node.style)
    if canvas and not executed:
        legal.append(_EXECUTE)
    legal.append(_FINISH)
    return legal


_VIEWS: dict[tuple[Canvas, str, bool, bool, bool], tuple[str, list[dict[str, Any]], dict[str, Any], list[Any]]] = {}


def canvas_views(
    canvas: Canvas, problem: Problem, executed: bool
) -> tuple[str, list[dict[str, Any]], dict[str, Any], list[dict[str, Any]]]:
    """The canvas's DSL, node views, statistics and legal actions, memoised by canvas
    (observations are read-only, so they share them)."""
    key = (canvas, problem.problem_type, problem.has_tests, problem.verbose, executed)
    found = _VIEWS.get(key)
    if found is None:
        if len(_VIEWS) >= 4096:
            _VIEWS.clear()
        found = _VIEWS[key] = (
            render_dsl(canvas),
            [node.view(i) | {"dsl": node.dsl()} for i, node in enumerate(canvas, 1)],
            statistics(canvas, problem.problem_type, problem.has_tests, problem.verbose),
            legal_actions(canvas, executed),
        )
    return found


def execution_view(episode: CanvasEpisode) -> dict[str, Any] | None:
    run = episode.last_execution
    if run is None:
        return None
    return {
        "dsl": run.dsl,
        "answer": run.answer,
        "verdict": run.verdict,
        "tokens": run.tokens,
        "latency": run.latency,
        "outputs": list(run.outputs),
        "current": episode.executed == episode.canvas,
    }


class CanvasFamily:
    """The canvas rules (see the package docstring)."""

    view_key: str | None = CANVAS_VIEW
    oracle_problem: str | None = None
    # The planner's reference (tasks/planner.py) plays workflows of named agents: none here.
    planner_reference = False

    def prepare(self, spec: TaskSpec, dag: DagIndex) -> tuple[CanvasTables, RewardModel]:
        parameters = spec.parameters
        problem = parameters["problem"]
        if not isinstance(problem, Problem):
            raise ValueError(f"task {spec.task_id!r} carries no canvas problem")
        budget = int(parameters["budget"])  # type: ignore[call-overload]
        tables = CanvasTables(
            problem=problem,
            budget=budget,
            latency_limit=float(parameters["latency_limit"]),  # type: ignore[arg-type]
            rounds=spec.step_limit or DEFAULT_ROUNDS,
            public_problem=problem.public(),
        )
        rewards: Any = CanvasRewards(budget)
        return tables, rewards

    def new_episode(self, compiled: CompiledTask, seed: int | None) -> CanvasEpisode:
        return CanvasEpisode(compiled, seed, compiled.reward_model)

    def reward_model(self, mode: str) -> Any:
        """The family's own reward modes beyond the grade's (``published``), or None."""
        return PublishedRewards() if mode == "published" else None

    def observe(self, episode: CanvasEpisode) -> dict[str, Any]:
        tables = episode.tables
        canvas = episode.canvas
        problem = episode.problem
        done = episode.done
        executed = episode.executed == canvas and episode.last_execution is not None
        dsl, nodes, stats, legal = canvas_views(canvas, problem, executed)
        return {
            "task_id": episode.task.task_id,
            "seed": episode.seed,
            "step_count": episode.step_count,
            "step_limit": tables.rounds,
            "rounds_left": max(0, tables.rounds - episode.step_count),
            "budget": episode.budget,
            "budget_used": episode.budget_used,
            "budget_remaining": episode.budget - episode.budget_used,
            # No workflow of named agents here: the keys its policies read are empty.
            "subtasks": [],
            "agents": [],
            "completed_count": 0,
            "subtask_count": 0,
            "active_count": 0,
            "capacity": 0,
            CANVAS_VIEW: {
                "problem": tables.public_problem,
                "operators": _CATALOGUE,
                "prompt_styles": list(PROMPT_STYLES),
                "grammar": _GRAMMAR,
                "latency_limit": tables.latency_limit,
                "dsl": dsl,
                "nodes": nodes,
                "statistics": stats,
                "last_execution": execution_view(episode),
                "answer": episode.answer,
            },
            "legal_actions": [] if done else legal,
            "errors": episode.errors,
            "reward": episode.last_reward,
            "reward_breakdown": episode.last_breakdown,
            "terminated": episode.terminated,
            "truncated": episode.truncated,
            "done": done,
        }

    def grade(self, episode: CanvasEpisode) -> dict[str, Any]:
        return grade_canvas(episode)

    def render(self, observation: Mapping[str, Any]) -> str:
        return render_canvas_text(observation)

    def heuristic(self, observation: Mapping[str, Any]) -> dict[str, Any] | None:
        return build_toward(observation, heuristic_canvas(observation[CANVAS_VIEW]["problem"]))

    def heuristic_on_episode(self, episode: CanvasEpisode) -> dict[str, Any] | None:
        return None

    def slack_on_episode(self, episode: CanvasEpisode) -> dict[str, Any] | None:
        return None

    def template(self, observation: Mapping[str, Any]) -> dict[str, Any] | None:
        return build_toward(observation, TEMPLATE)

    def success_metrics(self, episode: CanvasEpisode) -> dict[str, Any] | None:
        return None

    def dashboard_views(self, observation: Mapping[str, Any]) -> Sequence[tuple[str, str]]:
        return ()


# ------------------------------------------------------------------ built-in moves

# The published example workflow, whatever the problem.
TEMPLATE: Canvas = parse_dsl("Plan -> [Programmer, AnswerGenerate, Custom] -> ScEnsemble -> Test ? Revise : Format")

_HEURISTIC: dict[tuple[str, bool], str] = {
    ("math", False): "Plan -> Programmer -> Verify ? Revise : Format",
    ("math", True): "Plan -> [Programmer, Programmer, Programmer] -> ScEnsemble -> Verify ? Revise : Format",
    ("code", False): "Plan -> Programmer -> Test ? Revise : Format",
    ("code", True): "Plan -> Programmer -> (Test -> Revise) * 2",
    ("qa", False): "Decompose -> AnswerGenerate -> Verify ? Revise : Format",
    (
        "qa",
        True,
    ): "Decompose -> [AnswerGenerate, AnswerGenerate, AnswerGenerate] -> ScEnsemble -> Verify ? Revise : Format",
}


def heuristic_canvas(problem: Mapping[str, Any]) -> Canvas:
    """The canvas the heuristic builds for a problem: by its type, and more
    samples or revisions when it is hard."""
    return parse_dsl(_HEURISTIC[(problem["type"], problem["difficulty"] == "hard")])


def add_action(node: Node) -> dict[str, Any]:
    action: dict[str, Any] = {"action_type": "add"}
    if node.kind == OPERATOR:
        action["operator"] = node.operators[0]
    else:
        action["structure"] = node.kind
        action["operators"] = list(node.operators)
        if node.kind == LOOP:
            action["count"] = node.count
    if node.style != "default":
        action["prompt"] = node.style
    return action


def build_toward(observation: Mapping[str, Any], target: Canvas) -> dict[str, Any]:
    """The next move towards ``target``: delete the first node that differs, add
    the next missing one, execute, finish."""
    view = observation[CANVAS_VIEW]
    nodes = view["nodes"]
    wanted = [node.dsl() for node in target]
    for i, node in enumerate(nodes):
        if i >= len(wanted) or node["dsl"] != wanted[i]:
            return {"action_type": "delete", "target": i + 1}
    if len(nodes) < len(target):
        return add_action(target[len(nodes)])
    return dict(_FINISH)


# --------------------------------------------------------------------------- text


def render_canvas_text(observation: Mapping[str, Any]) -> str:
    """The observation in the published feedback layout, for an LLM's prompt."""
    view = observation[CANVAS_VIEW]
    problem = view["problem"]
    lines = [f"Problem ({problem['type']}, {problem['difficulty']}): {problem['text']}"]
    if problem.get("entry_point"):
        lines.append(f"Entry point: {problem['entry_point']} ({problem.get('test_count', 0)} tests)")
    lines.append(
        f"Round {observation['step_count']} of {observation['step_limit']}; "
        f"budget {observation['budget_remaining']} of {observation['budget']} tokens left; "
        f"latency limit {view['latency_limit']} s."
    )
    lines.append("")
    lines.append("=== Canvas ===")
    lines.append(f"DSL: {view['dsl'] or '(empty)'}")
    lines.append("Nodes:")
    for node in view["nodes"]:
        extra = f" x{node['count']}" if "count" in node else ""
        lines.append(
            f"  {node['id']}. {node['kind']}: {', '.join(node['operators'])}{extra} [prompt: {node['prompt']}]"
        )
    if not view["nodes"]:
        lines.append("  (none)")
    stats = view["statistics"]
    lines.append(
        f"Statistics: {stats['nodes']} nodes, {stats['operators']} operators; "
        f"solver {'yes' if stats['has_solver'] else 'no'}, checker {'yes' if stats['has_checker'] else 'no'}, "
        f"Test {'yes' if stats['has_test'] else 'no'}, Format {'yes' if stats['has_format'] else 'no'}."
    )
    lines.append(f"Structures: {', '.join(stats['structures']) or 'none'}")
    lines.append("")
    lines.append("=== Execution ===")
    run = view["last_execution"]
    if run is None:
        lines.append("Not executed yet.")
    else:
        lines.append(f"Executed: {run['dsl']}{'' if run['current'] else ' (the canvas changed since)'}")
        for output in run["outputs"]:
            lines.append(f"  - {output}")
        lines.append(f"Result: {run['answer']}")
        lines.append(f"Verifier: {run['verdict']}")
        lines.append(f"Tokens: {run['tokens']}; latency: {run['latency']} s")
    for error in observation.get("errors") or []:
        lines.append(f"Last action refused ({error['code']}): {error['message']}")
    lines.append("")
    lines.append("=== Operators ===")
    for op in view["operators"]:
        lines.append(f"  {op['name']} ({op['role']}, ~{op['tokens']} tokens, ~{op['latency']} s): {op['description']}")
    lines.append(f"Prompt styles: {', '.join(view['prompt_styles'])}")
    lines.append(
        "Actions: add (operator, or structure parallel/conditional/loop with operators), delete (target), "
        "modify (target, operator), set_prompt (target, prompt), execute, finish (answer)."
    )
    if observation["done"]:
        lines.append("The episode is over.")
    return "\n".join(lines)


CANVAS = CanvasFamily()
