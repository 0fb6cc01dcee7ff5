"""Roles are groups with model permissions; objects stay private to their owner whatever the role."""
from __future__ import annotations

from django.contrib.auth.models import Group

from tradepulse.core.permissions import sees_everything
from apps.accounts.roles import ADMIN, OPERATOR, ROLES, TRADER, VIEWER, sync_roles


def test_the_four_roles_exist_after_migrate(db):
    assert set(Group.objects.values_list("name", flat=True)) >= set(ROLES)


def test_viewer_can_only_view(victor):
    perms = victor.get_all_permissions()
    assert "audit.view_auditevent" in perms
    assert perms and all(p.split(".")[1].startswith("view_") for p in perms)


def test_trader_may_manage_own_tokens_but_not_users(alice):
    assert alice.has_perm("accounts.add_apitoken")
    assert not alice.has_perm("accounts.change_user")
    assert not alice.has_perm("accounts.view_all_objects")
    assert not alice.has_perm("audit.change_auditevent")


def test_operator_sees_everything_admin_holds_every_permission(olivia, db):
    assert sees_everything(olivia)
    admin_group = Group.objects.get(name=ADMIN)
    from django.contrib.auth.models import Permission

    assert admin_group.permissions.count() == Permission.objects.count()
    assert Group.objects.get(name=OPERATOR).permissions.filter(codename="view_all_objects").exists()
    assert not Group.objects.get(name=TRADER).permissions.filter(codename="view_all_objects").exists()
    assert not Group.objects.get(name=VIEWER).permissions.exclude(codename__startswith="view_").exists()


def test_sync_roles_is_idempotent(db):
    before = {g.name: set(g.permissions.values_list("pk", flat=True)) for g in Group.objects.all()}
    sync_roles()
    after = {g.name: set(g.permissions.values_list("pk", flat=True)) for g in Group.objects.all()}
    assert before == after
