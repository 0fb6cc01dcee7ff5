"""Fixtures every app's tests share.

People (healthchecks-style): alice owns things, bob is a colleague trader, charlie an outsider
trader, olivia an operator (sees all), victor a read-only viewer. `api(user)` gives an API
client logged in as that user.
"""
from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from apps.accounts.roles import OPERATOR, TRADER, VIEWER

PASSWORD = "correct-horse-battery-9"


def make_user(username: str, role: str | None, **extra):
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user(username=username, password=PASSWORD,
                                                email=f"{username}@example.test", **extra)
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def alice(db):
    return make_user("alice", TRADER)


@pytest.fixture
def bob(db):
    return make_user("bob", TRADER)


@pytest.fixture
def charlie(db):
    return make_user("charlie", TRADER)


@pytest.fixture
def olivia(db):
    return make_user("olivia", OPERATOR, is_staff=True)


@pytest.fixture
def victor(db):
    return make_user("victor", VIEWER)


@pytest.fixture
def api():
    """api(user) -> an APIClient authenticated as `user` by session (None: anonymous)."""

    def make(user=None):
        client = APIClient()
        if user is not None:
            client.force_login(user)
        return client

    return make


@pytest.fixture
def published(monkeypatch):
    """Collects events sent through tradepulse.core.events (after commit), for assertions."""
    from tradepulse.core import events

    sent: list[tuple[list[str], dict]] = []
    original = events.send_now

    def capture(groups, message):
        sent.append((groups, message))
        original(groups, message)

    monkeypatch.setattr(events, "send_now", capture)
    return sent


def pytest_collection_modifyitems(config, items):
    """Browser tests run last: Playwright's sync API keeps an event loop running in the main
    thread for the whole browser session, which async tests collected after it could not use."""
    browser_dir = "tests/browser/"
    items.sort(key=lambda item: browser_dir in item.nodeid)
