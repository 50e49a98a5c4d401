"""The arena (event time model) as a search problem with hindsight.

An arena episode is graded by its ``benchmark_score`` (see ``core/arena.py``):
priority-weighted completion, on-time completion and makespan. Workers are
interchangeable except for the seeded outcomes of their attempts, and two
facts make those outcomes avoidable with hindsight:

* In the event model an action takes no time, so a ``dispatch`` followed at
  once by an ``abort`` costs nothing but two steps, and moves that worker to
  its next attempt at that subtask (an abort is not a failure: the retry cap
  does not move). So before any start, the oracle can skip a worker's doomed
  attempts and start the subtask with an attempt that succeeds.
* An attempt that fails only holds a worker; leaving the worker idle instead
  is never worse for the score.

The search therefore solves the schedule in which every start succeeds
(ignoring the step limit), and turns the best schedule into actions by
replaying it: each start goes to the idle worker with the fewest doomed
attempts ahead, skipped as above. The replay's grade is reported; if a
schedule cannot be realised (no succeeding attempt within reach, or the step
limit), the result is reported as best found, with the search's bound.

Starts happen only at events (a completion or a capacity change): a start
between events could be moved back to the previous event, since nothing that
allows it changes in between, and every part of the score only improves when
work finishes earlier. A move is a set of ready subtasks to start (possibly
none), followed by a wait for the next event.

One job a module: :mod:`.node` holds :class:`ArenaNode`, the state at a
decision point; :mod:`.problem` holds :class:`ArenaProblem`, the tables of one
task and seed with the model's moves, score and bound (the
:class:`~..search.SearchProblem` the branch and bound explores); :mod:`.realise`
turns the schedule found into actions on named workers. The model is a
second statement of the episode's rules, for a relaxed problem; it is kept
honest by replay: the realised plan is replayed through the real episode, and
the replay's grade is the one reported (``solver.py``).
"""

from .node import ArenaNode
from .problem import ArenaProblem
from .realise import MAX_SKIPPED_ATTEMPTS, realise

__all__ = ["MAX_SKIPPED_ATTEMPTS", "ArenaNode", "ArenaProblem", "realise"]
