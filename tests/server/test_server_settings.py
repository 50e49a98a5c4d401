"""Server settings: defaults, environment variables, command-line options over both."""

from __future__ import annotations

import pytest

from workflow_orchestrator.server.app import ServerSettings, exposure_warning, parse_settings


def test_defaults() -> None:
    settings = parse_settings([], {})
    assert settings == ServerSettings()
    assert settings.enable_web and settings.max_concurrent_envs == 64 and settings.api_token is None


def test_environment_variables_are_read() -> None:
    settings = parse_settings(
        [],
        {
            "ENABLE_WEB_INTERFACE": "false",
            "WORKFLOW_ORCHESTRATOR_MAX_SESSIONS": "8",
            "WORKFLOW_ORCHESTRATOR_EPISODE_IDLE_TIMEOUT": "12.5",
            "WORKFLOW_ORCHESTRATOR_TOKEN": "abc",
        },
    )
    assert not settings.enable_web
    assert settings.max_concurrent_envs == 8
    assert settings.episode_idle_timeout_s == 12.5
    assert settings.api_token == "abc"


def test_options_override_environment_variables() -> None:
    settings = parse_settings(
        ["--web", "--max-sessions", "3", "--port", "9001", "--host", "0.0.0.0"],
        {"ENABLE_WEB_INTERFACE": "0", "WORKFLOW_ORCHESTRATOR_MAX_SESSIONS": "8"},
    )
    assert settings.enable_web and settings.max_concurrent_envs == 3
    assert (settings.host, settings.port) == ("0.0.0.0", 9001)


@pytest.mark.parametrize(
    ("argv", "environ"),
    [
        (["--max-sessions", "0"], {}),
        (["--episode-idle-timeout", "-1"], {}),
        (["--port", "eighty"], {}),
        ([], {"WORKFLOW_ORCHESTRATOR_MAX_EPISODES": "many"}),
    ],
)
def test_bad_settings_stop_with_a_message(argv: list[str], environ: dict[str, str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        parse_settings(argv, environ)
    assert stopped.value.code != 0


def test_the_token_is_not_shown_in_the_settings_repr() -> None:
    assert "abc" not in repr(parse_settings([], {"WORKFLOW_ORCHESTRATOR_TOKEN": "abc"}))


@pytest.mark.parametrize(
    ("argv", "environ", "warned"),
    [
        (["--host", "0.0.0.0"], {}, True),
        (["--host", "::"], {}, True),
        (["--host", "example.org"], {}, True),
        (["--host", "0.0.0.0"], {"WORKFLOW_ORCHESTRATOR_TOKEN": "abc"}, False),
        ([], {}, False),
        (["--host", "localhost"], {}, False),
        (["--host", "::1"], {}, False),
    ],
)
def test_listening_beyond_loopback_without_a_token_is_warned(
    argv: list[str], environ: dict[str, str], warned: bool
) -> None:
    message = exposure_warning(parse_settings(argv, environ))
    assert (message is not None) == warned
    if message is not None:
        assert "WORKFLOW_ORCHESTRATOR_TOKEN" in message


def test_archive_settings() -> None:
    defaults = parse_settings([], {})
    assert defaults.enable_archive and defaults.archive_path.endswith(".sqlite3")
    assert not parse_settings(["--no-archive"], {}).enable_archive
    assert not parse_settings([], {"WORKFLOW_ORCHESTRATOR_ARCHIVE": "off"}).enable_archive
    chosen = parse_settings(["--archive-path", "/tmp/x.sqlite3"], {"WORKFLOW_ORCHESTRATOR_ARCHIVE_PATH": "/y"})
    assert chosen.archive_path == "/tmp/x.sqlite3"
    assert parse_settings([], {"WORKFLOW_ORCHESTRATOR_ARCHIVE_PATH": "/y"}).archive_path == "/y"
    assert parse_settings(["--max-episodes-per-client", "3"], {}).max_episodes_per_client == 3
    with pytest.raises(SystemExit):
        parse_settings(["--no-archive", "--archive-path", "/tmp/x"], {})


def test_connection_limits_have_defaults_variables_and_options() -> None:
    defaults = ServerSettings()
    assert (defaults.max_header_bytes, defaults.max_connections) == (32 * 1024, 512)
    assert (defaults.request_read_timeout_s, defaults.send_timeout_s, defaults.shutdown_timeout_s) == (15, 20, 10)
    settings = parse_settings(
        ["--max-header-bytes", "4096", "--send-timeout", "2", "--shutdown-timeout", "1"],
        {
            "WORKFLOW_ORCHESTRATOR_READ_TIMEOUT": "3",
            "WORKFLOW_ORCHESTRATOR_MAX_CONNECTIONS": "32",
            "WORKFLOW_ORCHESTRATOR_KEEP_ALIVE_TIMEOUT": "2.5",
            "WORKFLOW_ORCHESTRATOR_SEND_TIMEOUT": "9",
        },
    )
    assert settings.max_header_bytes == 4096 and settings.send_timeout_s == 2 and settings.shutdown_timeout_s == 1
    assert settings.request_read_timeout_s == 3 and settings.max_connections == 32
    assert settings.keep_alive_timeout_s == 2.5
    for bad in (["--read-timeout", "0"], ["--max-connections", "0"], ["--max-header-bytes", "-1"]):
        with pytest.raises(SystemExit):
            parse_settings(bad, {})
