"""The environment server: the HTTP/WebSocket app, the OpenEnv adapter, the core and the tasks."""

import sys

# openenv.core's package __init__ imports openenv's own Gradio web interface
# eagerly: about 90 MB of resident memory and seconds of start-up, in every
# server process, whether or not a UI is served. This server never uses that
# interface (its dashboard is its own module), so before openenv.core is
# first imported the module is recorded as absent; openenv.core expects that
# case and sets create_web_interface_app to None. Nothing changes when
# openenv.core was already imported.
sys.modules.setdefault("openenv.core.env_server.web_interface", None)
