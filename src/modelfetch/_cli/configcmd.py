"""`modelfetch config`: the effective settings and where each came from (the token never shown)."""

from __future__ import annotations

import json
import os
from dataclasses import fields

from .._core.config import config_path
from .._core.settings import Settings, default_backend
from .._core.text import printable
from .._default import DEFAULT_BACKEND


def report(*, as_json: bool) -> str:
    """The settings a default source would use now, one per line (or one JSON document).

    Raises:
        InvalidRequestError: the config file is broken (the message names it and the line).
    """
    settings, origins = Settings.explain()
    backend, backend_origin = default_backend()
    rows: list[tuple[str, str, str]] = []
    for name in (f.name for f in fields(Settings)):
        if name == "state_dir":  # deprecated and unused
            continue
        value = getattr(settings, name)
        shown = ("set, not shown" if value else "not set") if name == "token" else str(value)
        rows.append((name, shown, origins[name]))
    rows.append(("backend", backend or DEFAULT_BACKEND, backend_origin))
    path = config_path(os.environ)
    where = f"{path}" + ("" if path.is_file() else " (not present)")
    if as_json:
        document = {"config_file": where, "settings": {n: {"value": v, "from": o} for n, v, o in rows}}
        return json.dumps(document, indent=2)
    width = max(len(n) for n, _, _ in rows)
    vwidth = max(len(v) for _, v, _ in rows)
    lines = [f"config file: {printable(where)}"]
    lines += [f"{n.ljust(width)}  {printable(v).ljust(vwidth)}  {printable(o)}" for n, v, o in rows]
    return "\n".join(lines)
