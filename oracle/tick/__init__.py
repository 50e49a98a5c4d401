"""The tick time model as a search problem with hindsight.

The scenarios' time model: every action, valid or not, takes one tick, after
which the world advances one tick. The package holds, one job a module:

* :mod:`.problem`: :class:`TickProblem`, everything about one (task, seed)
  that does not change during an episode: timelines of agent speed,
  availability and capacity (from the scheduled events), the seeded outcome of
  every attempt, and the tables the upper bound reads.
* :mod:`.node`: :class:`TickNode`, the state of an episode at a decision
  point with just enough history to grade it, and the mirror of the dynamics:
  the moves worth considering, one tick after a move, and the key and values
  under which states dominate each other.
* :mod:`.grade`: the grade of a finished node, rounded as the grader rounds it.
* :mod:`.bound`: an admissible upper bound on the grade of any continuation.
* :mod:`.adapter`: :class:`TickSearch`, all of the above as the
  :class:`~..search.SearchProblem` the branch and bound explores.

The problem and the node mirror
:class:`~workflow_orchestrator.server.core.episode.Episode` for tasks whose
``time_model`` is ``tick``, in a form cheap to copy and compare. The mirror is
a second statement of the rules, and it is kept honest by replay: every plan
found here is replayed through the real episode (``solver.replay``), the
replay's grade is the one reported, and a plan whose replay disagrees with the
search's own score is an error (``ModelMismatchError``), never a result.

Semantics mirrored (see ``episode.py``): every action takes one tick; an
attempt started at time ``t`` with speed ``v`` on work ``w`` ends at
``t + max(1, v * w)``; completions at a time are resolved before the events
scheduled at that time; an agent that goes offline while working fails its
subtask (transiently); an abort charges the time worked and leaves the subtask
failed without a failure record; a synthesis needs every subtask completed.
"""

from .adapter import TickSearch
from .bound import assemble_bound, contention_bounds, earliest_completions, upper_bound
from .grade import dimension_values, leaf_score
from .node import (
    DROPS_OUT,
    FAILS_PERMANENT,
    FAILS_TRANSIENT,
    NEVER,
    SUCCEEDS,
    PlanAction,
    TickNode,
    action_to_wire,
    apply_action,
    dominated,
    legal_moves,
    state_key,
    state_values,
)
from .problem import TickProblem, Weights

__all__ = [
    "DROPS_OUT",
    "FAILS_PERMANENT",
    "FAILS_TRANSIENT",
    "NEVER",
    "SUCCEEDS",
    "PlanAction",
    "TickNode",
    "TickProblem",
    "TickSearch",
    "Weights",
    "action_to_wire",
    "apply_action",
    "assemble_bound",
    "contention_bounds",
    "dimension_values",
    "dominated",
    "earliest_completions",
    "leaf_score",
    "legal_moves",
    "state_key",
    "state_values",
    "upper_bound",
]
