"""Personas for installing content (issue 11): an operator (staff), a designer (not staff, given
the "Can add mission" / "Can add story deck" permissions) and a rival GM (an ordinary user who
created a campaign of their own, which anyone can)."""

from __future__ import annotations

import pytest

from tests.conftest import _client, _user


@pytest.fixture
def operator(db):
    user = _user("operator")
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    return user


@pytest.fixture
def designer(db):
    from django.contrib.auth.models import Permission

    user = _user("designer")
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["add_mission", "add_storydeck"]),
    )
    return user


@pytest.fixture
def rival_gm(content):
    from campaigns import services

    user = _user("rival")
    services.campaign_create(user=user, name="Rival sandbox", pack_slug="starter")
    return user


@pytest.fixture
def operator_client(operator):
    return _client(operator)


@pytest.fixture
def designer_client(designer):
    return _client(designer)


@pytest.fixture
def rival_client(rival_gm):
    return _client(rival_gm)
