"""The environment server: the HTTP/WebSocket app, the OpenEnv adapter, the core, the tasks and the dashboard."""
