"""An inference server that loads its model in the background (docs/server.md).

`/health` answers from the first second (the process is alive: a liveness probe must not
kill it during a long download); `/ready` says 503 until the weights are on disk and
loaded (a readiness probe keeps traffic away until then). Shutdown cancels a download
still running; what arrived is kept, and the next start resumes it.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio
from fastapi import FastAPI
from fastapi.responses import JSONResponse

import modelfetch

MODEL_REPO = os.environ.get("MODEL_REPO", "org/model")


@dataclass
class ModelState:
    """What /ready reports: the loaded model, or why there is none yet."""

    weights: modelfetch.SafetensorsModel | None = None
    error: str | None = None


async def load_model(state: ModelState) -> None:
    """Fetch config and shards (the event loop stays free meanwhile), then load them."""
    try:
        state.weights = await modelfetch.fetch_safetensors(MODEL_REPO)
        # state.model = build_my_model(state.weights.config, state.weights.shards)
    except modelfetch.FetchError as exc:  # typed, one line: what was asked and why it failed
        state.error = str(exc)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Start loading in the background, serve at once; on shutdown, stop the download."""
    app.state.model = state = ModelState()
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(load_model, state)
        yield  # the server is up: /health answers while the weights download
        tasks.cancel_scope.cancel()
    await modelfetch.aclose()


app = FastAPI(lifespan=lifespan)


@app.get("/health")
async def health() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "alive"}


@app.get("/ready")
async def ready() -> JSONResponse:
    """Readiness: 200 once the model is loaded, 503 while loading or after a failure."""
    state: ModelState = app.state.model
    if state.weights is not None:
        body = {"status": "ready", "commit": state.weights.commit, "shards": len(state.weights.shards)}
        return JSONResponse(body)
    if state.error is not None:
        return JSONResponse({"status": "failed", "error": state.error}, status_code=503)
    return JSONResponse({"status": "loading"}, status_code=503)
