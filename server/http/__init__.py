"""The HTTP and WebSocket layer of the server, one module per job.

* :mod:`.settings`: :class:`ServerSettings`, read from the environment and the command line.
* :mod:`.responses`: :class:`ApiError`, JSON responses, error bodies and the app's error handlers.
* :mod:`.middleware`: the request body size limit and the bearer token check.
* :mod:`.sessions`: the ``/ws`` session endpoint and the cleanup of idle sessions and episodes.
* :mod:`.routes`: the episode routes (``/reset``, ``/step``, ``/state``) and ``/tasks``,
  ``/grader``, ``/episodes/{id}``, ``/baseline``, ``/schema``, ``/metadata``.

``server/app.py`` puts them together. This package's ``__init__`` imports
nothing, so that reading the settings does not load the web framework.
"""
