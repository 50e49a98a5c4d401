"""Helpers shared by the tests: tasks, plans, servers."""
