"""The optional config file: settings shared by every run on a machine, below the environment.

A TOML file at the platform's user config location (platformdirs: `~/.config/modelfetch/
config.toml` on Linux, `~/Library/Application Support/modelfetch/config.toml` on macOS,
`%LOCALAPPDATA%\\modelfetch\\config.toml` on Windows), or wherever `MODELFETCH_CONFIG` names.
Arguments win over environment variables, which win over the file, which wins over the
defaults. Keys are `Settings` field names plus `backend`::

    endpoint = "https://hf-mirror.internal"
    mirror_url = "s3://models/hf"
    backend = "httpx"
    low_speed_limit = 4096

The token is not a key: it stays in `HF_TOKEN` or huggingface_hub's token file. A key or value
that is not understood is an `InvalidRequestError` naming the file and the line.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InvalidRequestError

ENV_VAR = "MODELFETCH_CONFIG"
BACKENDS = ("threads", "httpx")


def _text(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("must be a non-empty string")
    return value


def _seconds(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError("must be a positive number of seconds")
    return float(value)


def _bytes_per_second(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("must be a whole number of bytes per second, 0 or more")
    return value


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def _backend(value: object) -> str:
    if value not in BACKENDS:
        raise ValueError(f"must be one of {', '.join(BACKENDS)}")
    return str(value)


KEYS: dict[str, Callable[[object], object]] = {
    "endpoint": lambda v: _text(v).rstrip("/"),
    "hub_cache": lambda v: Path(os.path.expandvars(_text(v))).expanduser(),
    "offline": _flag,
    "etag_timeout": _seconds,
    "download_timeout": _seconds,
    "lock_timeout": _seconds,
    "mirror_url": _text,
    "low_speed_limit": _bytes_per_second,
    "low_speed_time": _seconds,
    "deadline": _seconds,
    "backend": _backend,
}
"""Each key the file may set, and how its value is checked and converted."""


@dataclass(frozen=True, slots=True)
class ConfigFile:
    """A config file's settings (`values`), where it is, and the line each key is on."""

    path: Path | None
    values: Mapping[str, object] = field(default_factory=dict)
    lines: Mapping[str, int] = field(default_factory=dict)

    def origin(self, key: str) -> str:
        """Where `key` was set, for `modelfetch config`."""
        return f"{self.path}:{self.lines.get(key, 1)}"


def config_path(env: Mapping[str, str]) -> Path:
    """The config file's path: `MODELFETCH_CONFIG`, else the platform's user config folder."""
    named = env.get(ENV_VAR, "").strip()
    if named:
        return Path(named).expanduser()
    import platformdirs  # noqa: PLC0415 - only when no file is named

    return Path(platformdirs.user_config_dir("modelfetch", appauthor=False)) / "config.toml"


def load_config(env: Mapping[str, str]) -> ConfigFile:
    """Read the config file `env` points to (an absent default file is no settings).

    Raises:
        InvalidRequestError: the file is named by `MODELFETCH_CONFIG` but missing, cannot be
            read, is not TOML, or has a key or value that is not understood (file and line).
    """
    path = config_path(env)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if env.get(ENV_VAR, "").strip():
            raise InvalidRequestError(f"{path}: no such config file (named by {ENV_VAR}).") from None
        return ConfigFile(None)
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidRequestError(f"{path}: the config file cannot be read ({exc}).") from None
    return parse_config(path, text)


_KEY_LINE = re.compile(r"^[ \t]*([A-Za-z0-9_\-]+|\"[^\"]*\")[ \t]*=", re.M)


def parse_config(path: Path, text: str) -> ConfigFile:
    """Check and convert the settings of config file `path` holding `text`. Pure."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidRequestError(f"{path}: not valid TOML: {exc}.") from None
    lines = {
        match.group(1).strip('"'): text.count("\n", 0, match.start(1)) + 1
        for match in _KEY_LINE.finditer(text)
    }
    values: dict[str, object] = {}
    for key, value in raw.items():
        where = f"{path}:{lines.get(key, 1)}"
        if key not in KEYS:
            raise InvalidRequestError(
                f"{where}: unknown key {key!r}; known keys: {', '.join(KEYS)} (the token stays in HF_TOKEN)."
            )
        try:
            values[key] = KEYS[key](value)
        except ValueError as exc:
            raise InvalidRequestError(f"{where}: {key} = {value!r} {exc}.") from None
    return ConfigFile(path, values, {k: lines.get(k, 1) for k in values})
