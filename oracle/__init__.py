"""The oracle: best achievable grades with hindsight, and plans that earn them.

Imported only by the oracle's command, its tests and the evaluation tools,
never by the step loop or the server.
"""

from .catalogue import best_achievable
from .solver import BEST_FOUND, OPTIMAL, ModelMismatchError, OracleResult, policy_plan, replay, solve

__all__ = [
    "BEST_FOUND",
    "OPTIMAL",
    "ModelMismatchError",
    "OracleResult",
    "best_achievable",
    "policy_plan",
    "replay",
    "solve",
]
