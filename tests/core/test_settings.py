"""Settings resolve once from arguments, then HF_* variables, then defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelfetch import InvalidRequestError, Settings


def test_defaults_follow_huggingface_hub(tmp_path: Path) -> None:
    """With no variables, the cache is $XDG_CACHE_HOME/huggingface/hub and the Hub is huggingface.co."""
    s = Settings.from_env({"XDG_CACHE_HOME": str(tmp_path)})
    assert s.endpoint == "https://huggingface.co"
    assert s.hub_cache == tmp_path / "huggingface" / "hub"
    assert s.offline is False
    assert s.token is None


def test_environment_is_read(tmp_path: Path) -> None:
    """HF_ENDPOINT, HF_HOME, HF_HUB_CACHE, HF_HUB_OFFLINE and timeouts mean what huggingface_hub says."""
    env = {
        "HF_ENDPOINT": "http://127.0.0.1:9/",
        "HF_HOME": str(tmp_path / "home"),
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_ETAG_TIMEOUT": "3.5",
        "HF_HUB_DOWNLOAD_TIMEOUT": "7",
    }
    s = Settings.from_env(env)
    assert s.endpoint == "http://127.0.0.1:9"
    assert s.hub_cache == tmp_path / "home" / "hub"
    assert s.offline is True
    assert (s.etag_timeout, s.download_timeout) == (3.5, 7.0)
    s = Settings.from_env({**env, "HF_HUB_CACHE": str(tmp_path / "c")})
    assert s.hub_cache == tmp_path / "c"


def test_token_from_env_then_file(tmp_path: Path) -> None:
    """HF_TOKEN wins; otherwise the token file under HF_HOME is read and cleaned."""
    (tmp_path / "token").write_text(" hf_from_file\n")
    assert Settings.from_env({"HF_HOME": str(tmp_path)}).token == "hf_from_file"
    assert Settings.from_env({"HF_HOME": str(tmp_path), "HF_TOKEN": "hf_env"}).token == "hf_env"


def test_arguments_override_environment(tmp_path: Path) -> None:
    """Explicit values win over the environment; None means 'not given'."""
    s = Settings.from_env({"HF_HUB_OFFLINE": "1"}, offline=False, endpoint=None, hub_cache=str(tmp_path))
    assert s.offline is False
    assert s.hub_cache == tmp_path


def test_token_never_in_repr() -> None:
    """The repr of settings never shows the token."""
    s = Settings.from_env({"HF_TOKEN": "hf_supersecret"})
    assert "hf_supersecret" not in repr(s)
    assert "hf_supersecret" not in str(s)


@pytest.mark.parametrize(
    ("env", "match"),
    [({"HF_HUB_ETAG_TIMEOUT": "soon"}, "HF_HUB_ETAG_TIMEOUT"), ({"HF_ENDPOINT": "ftp://x"}, "endpoint")],
)
def test_bad_values_raise(env: dict[str, str], match: str) -> None:
    """Malformed variables raise a clear InvalidRequestError."""
    with pytest.raises(InvalidRequestError, match=match):
        Settings.from_env(env)


def test_state_dir_is_deprecated_and_unused(tmp_path: Path) -> None:
    """Passing the unused state_dir still works but warns; by default it is None and nothing is created."""
    with pytest.warns(DeprecationWarning, match="state_dir"):
        settings = Settings.from_env({}, state_dir=tmp_path / "state")
    assert settings.state_dir == tmp_path / "state"
    assert not (tmp_path / "state").exists()
    assert Settings.from_env({}).state_dir is None
