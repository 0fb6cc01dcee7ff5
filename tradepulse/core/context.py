"""Who is acting, on behalf of which request: carried in contextvars.

Set by the request middleware, by the Celery task_prerun hook (from message headers) and by
management commands. Read by the audit helper and the log filter, so a change made by a worker
on behalf of a request is recorded with that request's id.
"""
from __future__ import annotations

import contextlib
import ipaddress
import re
import uuid
from contextvars import ContextVar
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class ActorContext:
    request_id: str = ""  # always ours (minted here, or carried from the request that caused the work)
    # What the caller sent as X-Request-ID: kept to correlate with their logs, never used as ours
    # (a caller could otherwise make unrelated actions look like one request).
    client_request_id: str = ""
    user_id: int | None = None
    # "alice" for a person; "system:<component>" for a worker, beat or command acting alone.
    actor_label: str = ""
    ip: str | None = None
    user_agent: str = ""


_current: ContextVar[ActorContext] = ContextVar("tradepulse_actor", default=ActorContext())
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def current() -> ActorContext:
    return _current.get()


def new_request_id() -> str:
    return uuid.uuid4().hex


def clean_client_request_id(value: str | None) -> str:
    """A caller's X-Request-ID if it is short and plain, else "" (it is recorded, not trusted)."""
    if value and _REQUEST_ID_RE.match(value):
        return value
    return ""


def set_context(ctx: ActorContext):
    return _current.set(ctx)


def reset_context(token) -> None:
    _current.reset(token)


@contextlib.contextmanager
def acting(*, actor_label: str | None = None, user_id: int | None = None, request_id: str | None = None, **extra):
    """Run a block as someone: `with acting(actor_label="system:beat"): ...`.

    Fields not given are kept from the surrounding context; a request id is minted if there
    is none, so every system action can be traced too.
    """
    base = _current.get()
    ctx = replace(
        base,
        actor_label=actor_label if actor_label is not None else base.actor_label,
        user_id=user_id if user_id is not None else base.user_id,
        request_id=request_id or base.request_id or new_request_id(),
        **extra,
    )
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)


def _ip(value: str | None) -> str | None:
    try:
        return str(ipaddress.ip_address((value or "").strip()))
    except ValueError:
        return None


def client_address(remote: str | None, forwarded_for: str | None, *, proxy_hops: int | None) -> str | None:
    """The address of whoever sent a request.

    `proxy_hops`: how many trusted reverse proxies stand in front (None: no proxy; then
    X-Forwarded-For is the client's own claim and ignored). Each proxy appends the address it
    received the request from, so the client is the hops-th entry from the right; entries
    further left were written by the client and may be forged. With fewer entries than hops
    the request did not come through the proxies: its direct peer is the client.
    """
    if proxy_hops:
        hops = [h for h in (forwarded_for or "").split(",") if h.strip()]
        if len(hops) >= proxy_hops:
            return _ip(hops[-proxy_hops]) or _ip(remote)
    return _ip(remote)
