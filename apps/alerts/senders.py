"""How a message reaches each kind of channel: email, generic JSON webhook, Slack, Discord, Telegram.

`send(channel, message)` returns nothing on success and raises `SendError` with a sentence that
is safe to store and show: it names the host and what went wrong, never the URL's path, query
or a bot token (requests' own exception texts quote the full URL, so they are never passed on).
Redirects are not followed: a webhook that moved must be updated by its owner.
"""
from __future__ import annotations

import ipaddress
import json
import socket
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.mail import send_mail

from tradepulse.core.logging import redact, remember_secret

from .models import Channel, ChannelKind


class SendError(Exception):
    """A delivery attempt failed; `str()` is safe to store (no secret in it)."""


@dataclass
class Message:
    subject: str
    text: str
    payload: dict = field(default_factory=dict)  # the generic webhook's JSON body


def _scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[REDACTED]")
    return redact(text)


def _secrets(channel: Channel) -> list[str]:
    out = []
    if channel.url:
        parts = urlsplit(channel.url)
        out += [channel.url, parts.path, parts.query]
    if channel.bot_token:
        out.append(channel.bot_token)
    out = [s for s in out if s and len(s) > 1]
    for secret in out:
        remember_secret(secret)  # urllib3 logs request paths at DEBUG: masked there too
    return sorted(out, key=len, reverse=True)


def url_problem(url: str) -> str | None:
    """Why `url` cannot be a webhook, or None. Private, loopback and link-local addresses are
    refused (the server would be posting into its own network) unless
    TRADEPULSE_WEBHOOK_ALLOW_PRIVATE is on. The message names the host only."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return "The URL must start with https:// (or http://)."
    host = parts.hostname
    if not host:
        return "The URL has no host."
    if settings.TRADEPULSE_WEBHOOK_LOOPBACK_ONLY and host not in ("127.0.0.1", "localhost", "::1"):
        return f"{host} is not a local receiver (this process runs tests: nothing may reach the internet)."
    if settings.TRADEPULSE_WEBHOOK_ALLOW_PRIVATE:
        return None
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, parts.port or 443, proto=socket.IPPROTO_TCP)}
    except (socket.gaierror, UnicodeError):
        return f"The host {host} cannot be resolved."
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if not ip.is_global:
            return (f"{host} is a private or local address ({ip}); webhooks go to public receivers "
                    "(TRADEPULSE_WEBHOOK_ALLOW_PRIVATE=1 allows internal ones).")
    return None


def _post(url: str, *, body: dict, host: str, secrets: list[str]) -> requests.Response:
    timeout = settings.TRADEPULSE_ALERT_WEBHOOK_TIMEOUT_S
    problem = url_problem(url)  # again at send time: DNS may have changed since the channel was saved
    if problem:
        raise SendError(problem)
    try:
        response = requests.post(url, data=json.dumps(body), headers={"Content-Type": "application/json",
                                                                      "User-Agent": "TradePulse-alerts"},
                                 timeout=timeout, allow_redirects=False)
    except requests.Timeout:
        raise SendError(f"{host} did not answer within {timeout} s") from None
    except requests.ConnectionError:
        raise SendError(f"could not connect to {host}") from None
    except requests.RequestException as exc:
        raise SendError(f"request to {host} failed ({type(exc).__name__})") from None
    if not 200 <= response.status_code < 300:
        snippet = _scrub(" ".join(response.text[:300].split()), secrets)
        raise SendError(f"{host} answered HTTP {response.status_code}" + (f": {snippet}" if snippet else ""))
    return response


def send(channel: Channel, message: Message) -> None:
    """Deliver `message` on `channel`; raises SendError (safe text) when it did not arrive."""
    secrets = _secrets(channel)
    if channel.kind == ChannelKind.EMAIL:
        address = channel.email or channel.owner.email
        if not address:
            raise SendError("no email address: set one on the channel or on your account")
        try:
            send_mail(message.subject, message.text, settings.DEFAULT_FROM_EMAIL, [address])
        except Exception as exc:  # noqa: BLE001 - any mail failure is a failed attempt, retried
            raise SendError(_scrub(f"mail server refused: {type(exc).__name__}: {exc}", secrets)[:400]) from None
        return
    if channel.kind == ChannelKind.TELEGRAM:
        base = settings.TRADEPULSE_TELEGRAM_API_URL.rstrip("/")
        host = urlsplit(base).hostname or "telegram"
        if not (channel.bot_token and channel.chat_id):
            raise SendError("a Telegram channel needs a bot token and a chat id")
        response = _post(f"{base}/bot{channel.bot_token}/sendMessage",
                         body={"chat_id": channel.chat_id, "text": message.text[:4000]}, host=host, secrets=secrets)
        try:
            ok = response.json().get("ok") is True
        except ValueError:
            ok = False
        if not ok:
            raise SendError(f"{host} did not confirm the message (no \"ok\": true in its answer)")
        return
    if not channel.url:
        raise SendError("the channel has no URL")
    host = urlsplit(channel.url).hostname or "the receiver"
    if channel.kind == ChannelKind.SLACK:
        body = {"text": message.text[:3000]}
    elif channel.kind == ChannelKind.DISCORD:
        body = {"content": message.text[:2000]}
    else:
        body = message.payload
    _post(channel.url, body=body, host=host, secrets=secrets)
