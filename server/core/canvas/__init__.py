"""The canvas family: the policy builds the workflow itself from an operator
library (Plan, Decompose, Programmer, Test, Review, Revise, ScEnsemble,
Verify, Aggregate, Format, AnswerGenerate, Custom), executes it on a problem,
reads the feedback and finishes with an answer.

Pure Python (no files, no HTTP). Modules:

* ``operators``: the operator catalogue, roles, prompt styles, grammar bounds;
* ``canvas``: nodes and structures, the DSL (render and parse), the edits;
* ``xml``: the published XML action form;
* ``problem``: a task's problem;
* ``simulator``: the ``Executor`` interface and the simulated executor;
* ``episode``: the episode and its event log;
* ``grade``: the grade and the reward models;
* ``family``: the rules on the seam, the observation, the text, the built-in moves.
"""

from .canvas import Canvas, EditError, Node, apply_edit, parse_dsl, render_dsl
from .episode import CanvasEpisode, CanvasTables
from .family import CANVAS, CanvasFamily
from .problem import Problem
from .simulator import Execution, Executor, SimulatedExecutor
from .xml import parse_xml_action

__all__ = [
    "CANVAS",
    "Canvas",
    "CanvasEpisode",
    "CanvasFamily",
    "CanvasTables",
    "EditError",
    "Execution",
    "Executor",
    "Node",
    "Problem",
    "SimulatedExecutor",
    "apply_edit",
    "parse_dsl",
    "parse_xml_action",
    "render_dsl",
]
