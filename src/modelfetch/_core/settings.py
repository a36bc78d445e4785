"""Settings, resolved once when a source is built: arguments, then `HF_*`, then defaults.

The variables mean what they mean to `huggingface_hub`, so one environment configures
both. Nothing here is read at import time.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from .config import ENV_VAR as CONFIG_VAR
from .config import ConfigFile, load_config
from .errors import InvalidRequestError
from .validate import check_path, check_seconds

_TOKEN = re.compile(r"[\x21-\x7e]{1,4096}")  # visible ASCII: nothing that could end a header line

DEFAULT_ENDPOINT = "https://huggingface.co"
_TRUE = frozenset({"1", "on", "yes", "true"})


@dataclass(frozen=True, slots=True)
class Settings:
    """Where and how to fetch. Build one with `Settings.from_env()`.

    Attributes:
        endpoint: the Hub's base URL (`HF_ENDPOINT`), without a trailing slash.
        hub_cache: the Hugging Face cache folder (`HF_HUB_CACHE`, else `$HF_HOME/hub`).
        token: the access token (`HF_TOKEN`, else the token file); never shown in a repr.
        offline: serve only from the local cache (`HF_HUB_OFFLINE`).
        etag_timeout: seconds to wait for a metadata answer (`HF_HUB_ETAG_TIMEOUT`).
        download_timeout: seconds to wait for body bytes (`HF_HUB_DOWNLOAD_TIMEOUT`).
        lock_timeout: seconds to wait for another process's lock on the same blob.
        state_dir: deprecated and unused (modelfetch keeps no state of its own); passing it
            warns. It will be removed in a future release.
        mirror_url: the fleet's shared bucket (`MODELFETCH_MIRROR_URL`, e.g. `s3://models/hf`);
            when set, the default source reads through it (see `MirrorSource`).
        low_speed_limit: bytes per second a body must keep up, averaged over
            `low_speed_time` (`MODELFETCH_LOW_SPEED_LIMIT`, default 1024; 0 turns it off).
        low_speed_time: seconds over which `low_speed_limit` is judged
            (`MODELFETCH_LOW_SPEED_TIME`, default 30). A slower body is cut and retried.
        deadline: seconds one fetch or listing may take in all, retries included
            (`MODELFETCH_DEADLINE`; default None: no overall limit).
    """

    endpoint: str = DEFAULT_ENDPOINT
    hub_cache: Path = field(default_factory=lambda: _hf_home({}) / "hub")
    token: str | None = field(default=None, repr=False)
    offline: bool = False
    etag_timeout: float = 10.0
    download_timeout: float = 10.0
    lock_timeout: float = 600.0
    state_dir: Path | None = None
    mirror_url: str | None = None
    low_speed_limit: int = 1024
    low_speed_time: float = 30.0
    deadline: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.endpoint, str) or not self.endpoint.startswith(("http://", "https://")):
            raise InvalidRequestError(
                f"endpoint {self.endpoint!r} is not an http(s) URL; set HF_ENDPOINT to one."
            )
        # Frozen: normalise through object.__setattr__, once, here.
        object.__setattr__(self, "hub_cache", check_path("hub_cache", self.hub_cache))
        if self.state_dir is not None:
            warnings.warn(
                "Settings.state_dir is unused and will be removed; stop passing it.",
                DeprecationWarning,
                stacklevel=3,
            )
        if self.token is not None and not isinstance(self.token, str):
            raise InvalidRequestError("token must be a string or None.")
        if self.token is not None and not _TOKEN.fullmatch(self.token):  # it goes into a header
            raise InvalidRequestError(
                "token must be printable ASCII without spaces (as Hub tokens are); it was not shown."
            )
        if not isinstance(self.offline, bool):
            raise InvalidRequestError(f"offline must be True or False, not {self.offline!r}.")
        for name in ("etag_timeout", "download_timeout", "lock_timeout"):
            object.__setattr__(self, name, check_seconds(name, getattr(self, name), allow_zero=False))
        if isinstance(self.low_speed_limit, bool) or not isinstance(self.low_speed_limit, int):
            raise InvalidRequestError(
                f"low_speed_limit must be whole bytes per second, not {self.low_speed_limit!r}."
            )
        if self.low_speed_limit < 0:
            raise InvalidRequestError(f"low_speed_limit must be >= 0, not {self.low_speed_limit!r}.")
        object.__setattr__(
            self, "low_speed_time", check_seconds("low_speed_time", self.low_speed_time, allow_zero=False)
        )
        if self.deadline is not None:
            object.__setattr__(self, "deadline", check_seconds("deadline", self.deadline, allow_zero=False))
        if self.mirror_url is not None and not isinstance(self.mirror_url, str):
            raise InvalidRequestError(f"mirror_url must be a URL string or None, not {self.mirror_url!r}.")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Resolve settings from `environ` (default `os.environ`), then apply `overrides`.

        Below the environment comes the config file (`modelfetch._core.config`): read when
        `environ` is the process's environment, or names one with `MODELFETCH_CONFIG`.

        Args:
            environ: the variables to read; `os.environ` when omitted.
            **overrides: field values that win over the environment (None means unset).

        Raises:
            InvalidRequestError: a value is malformed (say, a non-numeric timeout), or the
                config file is (the message names its file and line).
        """
        return cls.explain(environ, **overrides)[0]

    @classmethod
    def explain(
        cls, environ: Mapping[str, str] | None = None, **overrides: object
    ) -> tuple[Settings, dict[str, str]]:
        """`from_env`, plus where each setting came from: "argument", "environment (NAME)",
        "config file (path:line)" or "default"."""
        unknown = sorted(set(overrides) - {f.name for f in fields(cls)})
        if unknown:
            raise InvalidRequestError(
                f"Settings.from_env() got unknown setting(s) {', '.join(unknown)}; "
                f"known: {', '.join(f.name for f in fields(cls))}."
            )
        env = os.environ if environ is None else environ
        file = load_config(env) if environ is None or env.get(CONFIG_VAR) else ConfigFile(None)
        home = _hf_home(env)
        values: dict[str, object] = {}
        origins: dict[str, str] = {}
        for name, (variables, read) in _FROM_ENV.items():
            given = next((v for v in variables if env.get(v)), None)
            if given is not None:
                values[name], origins[name] = read(env, home), f"environment ({given})"
            elif name in file.values:
                values[name], origins[name] = file.values[name], f"config file ({file.origin(name)})"
            else:
                values[name], origins[name] = read(env, home), "default"
        if overrides.get("token") is not None:
            origins["token"] = "argument"
        else:  # a given token: no file read
            values["token"] = _token(env, home)
            origins["token"] = (
                "environment" if env.get("HF_TOKEN") else ("token file" if values["token"] else "default")
            )
        for name, value in overrides.items():
            if value is not None:
                values[name], origins[name] = value, "argument"
        settings = replace(cls(), **values)  # type: ignore[arg-type]
        for name in (f.name for f in fields(cls)):
            origins.setdefault(name, "default")
        return settings, origins


def default_backend(environ: Mapping[str, str] | None = None) -> tuple[str | None, str]:
    """The config file's `backend` (None if it sets none), and where that came from."""
    env = os.environ if environ is None else environ
    file = load_config(env) if environ is None or env.get(CONFIG_VAR) else ConfigFile(None)
    backend = file.values.get("backend")
    return (str(backend), f"config file ({file.origin('backend')})") if backend else (None, "default")


def _hf_home(env: Mapping[str, str]) -> Path:
    if env.get("HF_HOME"):
        return Path(os.path.expandvars(env["HF_HOME"])).expanduser()
    xdg = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg).expanduser() / "huggingface"


def _hub_cache(env: Mapping[str, str], home: Path) -> Path:
    raw = env.get("HF_HUB_CACHE") or env.get("HUGGINGFACE_HUB_CACHE")
    if raw:
        return Path(os.path.expandvars(raw)).expanduser()
    return home / "hub"


def _token(env: Mapping[str, str], home: Path) -> str | None:
    token = _clean(env.get("HF_TOKEN") or env.get("HUGGING_FACE_HUB_TOKEN"))
    if token:
        return token
    token_path = Path(env.get("HF_TOKEN_PATH") or home / "token").expanduser()
    try:
        return _clean(token_path.read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return None


def _clean(token: str | None) -> str | None:
    if token is None:
        return None
    return token.replace("\r", "").replace("\n", "").strip() or None


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise InvalidRequestError(f"{name}={raw!r} is not a number of seconds.") from None


def _seconds_or_none(name: str) -> Callable[[Mapping[str, str], Path], object]:
    return lambda env, home: _float(env, name, 0.0) or None


# Each setting: the variables that set it (first wins) and how to read it from them (or the default).
_FROM_ENV: dict[str, tuple[tuple[str, ...], Callable[[Mapping[str, str], Path], object]]] = {
    "endpoint": (
        ("HF_ENDPOINT",),
        lambda env, home: (env.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/"),
    ),
    "hub_cache": (
        ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME"),
        _hub_cache,
    ),
    "offline": (
        ("HF_HUB_OFFLINE",),
        lambda env, home: env.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE,
    ),
    "etag_timeout": (("HF_HUB_ETAG_TIMEOUT",), lambda env, home: _float(env, "HF_HUB_ETAG_TIMEOUT", 10.0)),
    "download_timeout": (
        ("HF_HUB_DOWNLOAD_TIMEOUT",),
        lambda env, home: _float(env, "HF_HUB_DOWNLOAD_TIMEOUT", 10.0),
    ),
    "lock_timeout": ((), lambda env, home: 600.0),
    "mirror_url": (
        ("MODELFETCH_MIRROR_URL",),
        lambda env, home: env.get("MODELFETCH_MIRROR_URL", "").strip() or None,
    ),
    "low_speed_limit": (
        ("MODELFETCH_LOW_SPEED_LIMIT",),
        lambda env, home: int(_float(env, "MODELFETCH_LOW_SPEED_LIMIT", 1024)),
    ),
    "low_speed_time": (
        ("MODELFETCH_LOW_SPEED_TIME",),
        lambda env, home: _float(env, "MODELFETCH_LOW_SPEED_TIME", 30.0),
    ),
    "deadline": (("MODELFETCH_DEADLINE",), _seconds_or_none("MODELFETCH_DEADLINE")),
}
