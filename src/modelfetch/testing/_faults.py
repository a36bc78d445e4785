"""Fault injection for FakeHub: deterministic, scoped per route or file, composable.

A `Fault` says what goes wrong; `FakeHub.inject(fault, method=..., path=..., times=...)`
says where and how often. Every active rule that matches a request applies to it, so
latency plus a dropped connection is two rules (or one `Fault` with both fields set).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Fault:
    """What goes wrong with a matching request. Fields left at their default do nothing.

    Attributes:
        latency: seconds to wait before answering at all.
        status: answer with this HTTP status (and `X-Error-Code`-less JSON) instead.
        retry_after: the `Retry-After` header to send with `status`: seconds (`0`, `"5"`) or an
            HTTP date.
        drop_after: close the connection after this many body bytes.
        stall: seconds to pause the body once `stall_after` bytes were sent.
        stall_after: where in the body the stall (or the hold) starts.
        hold: once `stall_after` body bytes were sent, send nothing more until this event is
            set (deterministic: a test decides when the transfer may go on).
        throttle: send the body at most this many bytes per second.
        corrupt_at: flip the bits of the body byte at this offset of the file.
        length_delta: add this to the `Content-Length` header (the body stays right).
        redirect_slash: answer `307` to the same path plus a trailing slash (query kept), as
            some Hub mirror servers do for API routes; the slashed path is then served.
        body: answer `200` with these bytes instead (a server that is not a Hub: an HTML
            page, an empty or truncated body).
        content_type: the `Content-Type` sent with `body`.
        ignore_range: answer a ranged GET with `200` and the whole body, as some third-party
            Hub mirrors do (`Accept-Ranges` is still announced).
    """

    latency: float = 0.0
    status: int | None = None
    retry_after: str | int | None = None
    drop_after: int | None = None
    stall: float = 0.0
    stall_after: int = 0
    hold: threading.Event | None = None
    throttle: int | None = None
    corrupt_at: int | None = None
    length_delta: int = 0
    redirect_slash: bool = False
    body: bytes | None = None
    content_type: str = "text/html"
    ignore_range: bool = False


@dataclass(slots=True)
class FaultRule:
    """A fault, the requests it applies to, and how many more times it may fire.

    Attributes:
        fired: how many requests it has applied to so far (for assertions in tests).
    """

    fault: Fault
    method: str | None = None
    path: str | None = None
    remaining: int | None = None
    fired: int = 0

    def matches(self, method: str, target: str) -> bool:
        """Whether this rule applies to a request (it has uses left, method and path match)."""
        if self.remaining is not None and self.remaining <= 0:
            return False
        if self.method is not None and self.method.upper() != method:
            return False
        return self.path is None or self.path in target


@dataclass(slots=True)
class FaultPlan:
    """The active rules, and the merge of those matching one request."""

    rules: list[FaultRule] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, rule: FaultRule) -> FaultRule:
        """Activate `rule`."""
        with self.lock:
            self.rules.append(rule)
        return rule

    def remove(self, rule: FaultRule) -> None:
        """Deactivate `rule` (no-op if gone)."""
        with self.lock:
            if rule in self.rules:
                self.rules.remove(rule)

    def clear(self) -> None:
        """Deactivate every rule."""
        with self.lock:
            self.rules.clear()

    def take(self, method: str, target: str) -> Fault:
        """Consume one use of every matching rule and return their merged effect."""
        with self.lock:
            hits = [rule for rule in self.rules if rule.matches(method, target)]
            for rule in hits:
                rule.fired += 1
                if rule.remaining is not None:
                    rule.remaining -= 1
        return merge([rule.fault for rule in hits])


def merge(faults: list[Fault]) -> Fault:
    """Combine faults: latencies and stalls add up; for the rest the first one set wins."""
    if not faults:
        return Fault()
    if len(faults) == 1:
        return faults[0]

    def first(name: str) -> object:
        return next((getattr(f, name) for f in faults if getattr(f, name) is not None), None)

    return Fault(
        latency=sum(f.latency for f in faults),
        status=first("status"),  # type: ignore[arg-type]
        retry_after=first("retry_after"),  # type: ignore[arg-type]
        drop_after=first("drop_after"),  # type: ignore[arg-type]
        stall=sum(f.stall for f in faults),
        stall_after=max(f.stall_after for f in faults),
        hold=first("hold"),  # type: ignore[arg-type]
        throttle=first("throttle"),  # type: ignore[arg-type]
        corrupt_at=first("corrupt_at"),  # type: ignore[arg-type]
        length_delta=sum(f.length_delta for f in faults),
        redirect_slash=any(f.redirect_slash for f in faults),
        body=first("body"),  # type: ignore[arg-type]
        content_type=next((f.content_type for f in faults if f.body is not None), "text/html"),
        ignore_range=any(f.ignore_range for f in faults),
    )
