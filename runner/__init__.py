"""The evaluation runner behind ``inference.py``: an LLM over an OpenAI-compatible
API, a built-in policy or the oracle plays tasks and seeds; the results are
tabulated and written.

Modules by job (import the one you need; this package imports none of them, so
that a tool needing only ``parse_seeds`` loads neither the OpenAI client nor httpx):

- ``errors``: the runner's exceptions and exit codes;
- ``settings``: the command line, environment variables, ``RunSettings``, ``parse_seeds``;
- ``answers``: reading a model's answer into an action; the label of an action;
- ``prompts``: the system and user prompts, the tool schemas;
- ``players``: who chooses the actions (a built-in policy, the oracle, a model);
- ``sessions``: one episode in this process or on an environment server;
- ``episodes``: step records, episode results, the episode loop;
- ``reports``: progress, summaries, tables, the results, trajectory and baseline files;
- ``run``: a whole run (plan, play, report), and the policy tables of the other tools.
"""
