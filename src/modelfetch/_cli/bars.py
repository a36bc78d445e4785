"""Terminal progress bars (tqdm on stderr) fed by `ProgressEvent`s."""

from __future__ import annotations

import os
import sys
from typing import Any, TextIO

from tqdm import tqdm

from .._core.progress import ProgressEvent, ProgressKind
from .._core.types import AssetRef


def bars_enabled(stream: TextIO, *, quiet: bool) -> bool:
    """Bars only on a terminal, and not with `--quiet` or `HF_HUB_DISABLE_PROGRESS_BARS`."""
    disabled = os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS", "").strip().lower() in (
        "1",
        "true",
        "yes",
        "on",
    )
    return not quiet and not disabled and stream.isatty()


class ProgressBars:
    """One bar per active file plus a total; call it as a `ProgressCallback`.

    Used as a context manager so every bar is closed however the fetch ends.
    """

    def __init__(self, stream: TextIO | None = None, *, total_label: str = "total") -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._files: dict[AssetRef, Any] = {}
        self._seen: dict[AssetRef, int] = {}
        self._total = tqdm(
            desc=total_label,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            file=self._stream,
            position=0,
            total=0,
        )

    def __call__(self, event: ProgressEvent) -> None:
        """Update the bars for one event."""
        ref = event.ref
        if event.kind is ProgressKind.WAITING:
            tqdm.write(f"{ref.filename[-60:]}: another process is downloading it; waiting", file=self._stream)
            return
        if event.kind is ProgressKind.STARTED:
            self._total.total += event.total or 0
            self._total.refresh()
            self._files[ref] = tqdm(
                desc=ref.filename[-40:],
                total=event.total,
                initial=event.done,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                file=self._stream,
                leave=False,
            )
        bar = self._files.get(ref)
        delta = event.done - self._seen.get(ref, 0)
        self._seen[ref] = event.done
        if bar is not None and delta:
            bar.update(delta)
        if delta:
            self._total.update(delta)
        if event.kind in (ProgressKind.FINISHED, ProgressKind.FAILED) and bar is not None:
            bar.close()
            del self._files[ref]

    def __enter__(self) -> ProgressBars:
        return self

    def __exit__(self, *exc: object) -> None:
        for bar in self._files.values():
            bar.close()
        self._files.clear()
        self._total.close()
