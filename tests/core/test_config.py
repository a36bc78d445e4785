"""The config file: below the environment, above the defaults; every mistake names the file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelfetch import InvalidRequestError, Settings
from modelfetch._cli.main import main
from modelfetch._core.config import parse_config
from modelfetch._default import hub_source, resolve_backend

GOOD = """# a fleet machine
endpoint = "https://hf-mirror.internal/"
low_speed_limit = 4096
mirror_url = "s3://models/hf"
backend = "threads"
"""


def _env(tmp_path: Path, text: str, **variables: str) -> dict[str, str]:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return {"MODELFETCH_CONFIG": str(path), "HF_HOME": str(tmp_path / "home"), **variables}


def test_the_file_sits_between_the_environment_and_the_defaults(tmp_path: Path) -> None:
    """File values apply; an environment variable wins over its key; an argument wins over both."""
    env = _env(tmp_path, GOOD, MODELFETCH_LOW_SPEED_LIMIT="9")
    settings, origins = Settings.explain(env, deadline=5.0)
    assert settings.endpoint == "https://hf-mirror.internal"
    assert origins["endpoint"] == f"config file ({tmp_path / 'config.toml'}:2)"
    assert (settings.low_speed_limit, origins["low_speed_limit"]) == (
        9,
        "environment (MODELFETCH_LOW_SPEED_LIMIT)",
    )
    assert (settings.mirror_url, settings.deadline, origins["deadline"]) == (
        "s3://models/hf",
        5.0,
        "argument",
    )
    assert origins["etag_timeout"] == "default"
    assert Settings.from_env(env, endpoint="http://127.0.0.1:1").endpoint == "http://127.0.0.1:1"


def test_an_explicit_environment_without_the_variable_reads_no_file(tmp_path: Path) -> None:
    """`Settings.from_env({...})` stays hermetic: only MODELFETCH_CONFIG in it brings a file in."""
    assert Settings.from_env({"HF_HOME": str(tmp_path)}).endpoint == "https://huggingface.co"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('endpoint = "https://h"\nbogus = 1\n', r"config\.toml:2: unknown key 'bogus'"),
        ("\n\nlow_speed_limit = -1\n", r"config\.toml:3: low_speed_limit = -1 must be"),
        ('backend = "curl"\n', r"config\.toml:1: backend = 'curl' must be one of threads, httpx"),
        ('token = "hf_x"\n', r"unknown key 'token'.*HF_TOKEN"),
        ("endpoint = \n", r"config\.toml: not valid TOML"),
    ],
    ids=["unknown-key", "bad-value", "bad-backend", "token", "not-toml"],
)
def test_mistakes_name_the_file_and_the_line(tmp_path: Path, text: str, message: str) -> None:
    """Unknown keys, bad values and broken TOML are InvalidRequestError naming where."""
    with pytest.raises(InvalidRequestError, match=message):
        Settings.from_env(_env(tmp_path, text))


def test_a_named_file_that_is_missing_is_an_error(tmp_path: Path) -> None:
    """MODELFETCH_CONFIG pointing nowhere is a mistake, not an empty config."""
    with pytest.raises(InvalidRequestError, match="no such config file"):
        Settings.from_env({"MODELFETCH_CONFIG": str(tmp_path / "absent.toml")})


def test_parsing_is_pure() -> None:
    """Values converted, lines recorded, nothing read from disk."""
    parsed = parse_config(Path("/etc/x.toml"), GOOD)
    assert parsed.values["endpoint"] == "https://hf-mirror.internal"
    assert parsed.lines["backend"] == 5


def test_the_backend_key_picks_the_default_stacks_hub_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """backend = "threads" in the file: the default Hub source is HubSource; an argument wins."""
    for name, value in _env(tmp_path, 'backend = "threads"\n').items():
        monkeypatch.setenv(name, value)
    assert resolve_backend(None) == "threads"
    assert resolve_backend("httpx") == "httpx"
    assert type(hub_source()).__name__ == "HubSource"


def test_modelfetch_config_prints_values_and_origins_never_the_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each setting with where it came from; the token shown only as set."""
    for name, value in _env(tmp_path, GOOD, HF_TOKEN="hf_secret_value").items():
        monkeypatch.setenv(name, value)
    assert main(["config"]) == 0
    out = capsys.readouterr().out
    assert "hf_secret_value" not in out
    assert "set, not shown" in out
    assert "https://hf-mirror.internal" in out
    assert "config.toml:2" in out
    assert "threads" in out


def test_modelfetch_config_with_a_broken_file_is_status_2_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A broken file: one line on stderr naming the file and line, exit status 2."""
    for name, value in _env(tmp_path, "bogus = 1\n").items():
        monkeypatch.setenv(name, value)
    assert main(["config"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "config.toml:1" in line
