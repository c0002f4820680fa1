"""A group's page: its managers add and remove members and issue and revoke its keys, without being staff;
nobody else (another user, a member, another group's manager, staff) learns the group exists. Audited."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group
from django.test import Client
from django.utils import timezone

from accounts import groups, keys
from accounts.models import ApiKey, User
from tests.accounts.helpers import make_model
from tests.conftest import make_user
from usage.models import Limit, UsageRecord

pytestmark = pytest.mark.django_db


@pytest.fixture
def research(alice: User) -> Group:
    """A group alice manages (without being staff), with carol in it."""
    group, _ = groups.add_group("research")
    groups.add_manager(group, alice)
    groups.add_member(group, make_user("carol"))
    return group


def _as(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _page(group: Group) -> str:
    return f"/accounts/groups/{group.pk}/"


def _post(client: Client, group: Group, **data: object):  # type: ignore[no-untyped-def]
    return client.post(_page(group), data)


def test_a_manager_adds_and_removes_members(research: Group, alice: User, bob: User) -> None:
    manager = _as(alice)
    page = manager.get(_page(research))
    assert page.status_code == 200 and "carol" in page.content.decode()
    added = _post(manager, research, action="add-member", username="bob")
    assert added.status_code == 302
    assert research.user_set.filter(pk=bob.pk).exists()
    removed = _post(manager, research, action="remove-member", user=str(bob.pk))
    assert removed.status_code == 302
    assert not research.user_set.filter(pk=bob.pk).exists()
    assert list(LogEntry.objects.filter(object_id=str(research.pk)).values_list("change_message", flat=True)) == [
        "Removed member bob.",
        "Added member bob.",
    ]
    assert set(LogEntry.objects.values_list("user__username", flat=True)) == {"alice"}


@pytest.mark.parametrize(
    ("username", "error"),
    [
        ("nobody", "No user named"),
        ("carol", "already a member"),
        ("", "This field is required"),
        ("group:1", "No user"),
    ],
)
def test_a_manager_is_told_why_a_member_cannot_be_added(
    research: Group, alice: User, username: str, error: str
) -> None:
    groups.issue_group_key(research, "ci")  # its service account "group:<id>" exists
    answer = _post(_as(alice), research, action="add-member", username=username.replace("1", str(research.pk)))
    assert answer.status_code == 400
    assert error in answer.content.decode()


def test_a_manager_issues_a_key_shown_once_and_billed_to_the_group_and_revokes_it(research: Group, alice: User) -> None:
    manager = _as(alice)
    created = _post(manager, research, action="create-key", name="nightly job")
    assert created.status_code == 200
    secret = re.search(r'<code id="new-key">([^<]+)</code>', created.content.decode()).group(1)  # type: ignore[union-attr]
    key = keys.find_key(secret)
    assert key is not None and key.group == research and key.name == "nightly job"
    assert key.user.username == f"group:{research.pk}" and not key.user.has_usable_password()
    assert secret not in manager.get(_page(research)).content.decode()
    revoked = _post(manager, research, action="revoke-key", key=str(key.pk))
    assert revoked.status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None
    messages = set(LogEntry.objects.filter(object_id=str(key.pk)).values_list("change_message", flat=True))
    assert messages == {
        f"Created for group research ({key.display}).",
        f"Revoked for group research ({key.display}).",
    }


def test_the_key_form_offers_only_the_models_one_may_use(research: Group, alice: User) -> None:
    make_model("acme/open")
    make_model("acme/secret").groups.set([research])
    assert "acme/secret" not in _as(alice).get("/accounts/profile/").content.decode()
    answer = _as(alice).post("/accounts/profile/", {"name": "k", "allowed_models": ["acme/secret"]})
    assert answer.status_code == 400 and not ApiKey.objects.filter(user=alice).exists()
    groups.add_member(research, alice)
    assert "acme/secret" in _as(alice).get("/accounts/profile/").content.decode()


@pytest.fixture
def outsiders(research: Group, bob: User) -> dict[str, User]:
    """Everyone who must not reach research's page: another user, a member, another group's manager, staff."""
    other, _ = groups.add_group("sales")
    groups.add_manager(other, bob)
    return {
        "another user": make_user("dave"),
        "a member": User.objects.get(username="carol"),
        "another group's manager": bob,
        "staff": make_user("staffer", is_staff=True, is_superuser=True),
    }


@pytest.mark.parametrize("who", ["another user", "a member", "another group's manager", "staff"])
def test_nobody_but_its_managers_reaches_a_groups_page(research: Group, outsiders: dict[str, User], who: str) -> None:
    key, _ = groups.issue_group_key(research, "ci")
    client = _as(outsiders[who])
    assert client.get(_page(research)).status_code == 404
    for data in (
        {"action": "add-member", "username": outsiders[who].username},
        {"action": "remove-member", "user": str(User.objects.get(username="carol").pk)},
        {"action": "create-key", "name": "mine"},
        {"action": "revoke-key", "key": str(key.pk)},
    ):
        assert _post(client, research, **data).status_code == 404
    assert set(research.user_set.values_list("username", flat=True)) == {"carol"}
    assert list(ApiKey.objects.filter(group=research).values_list("name", "revoked_at")) == [("ci", None)]
    assert research.name not in client.get("/accounts/groups/").content.decode() or who == "a member"


def test_deleting_a_group_deletes_its_keys_and_retires_its_service_account(research: Group, alice: User) -> None:
    key, _ = groups.issue_group_key(research, "ci", actor=alice)
    service = key.user
    research.delete()
    assert not ApiKey.objects.filter(pk=key.pk).exists()
    service.refresh_from_db()
    assert not service.is_active


def test_a_manager_cannot_touch_another_groups_keys_or_people_outside_the_group(
    research: Group, alice: User, bob: User
) -> None:
    sales, _ = groups.add_group("sales")
    groups.add_member(sales, bob)
    their_key, _ = groups.issue_group_key(sales, "theirs")
    bobs_own, _ = keys.create_key(bob, "bob's")
    manager = _as(alice)
    assert _post(manager, research, action="revoke-key", key=str(their_key.pk)).status_code == 404
    assert _post(manager, research, action="revoke-key", key=str(bobs_own.pk)).status_code == 404
    assert _post(manager, research, action="remove-member", user=str(bob.pk)).status_code == 302
    assert sales.user_set.filter(pk=bob.pk).exists()
    assert not ApiKey.objects.filter(revoked_at__isnull=False).exists()
    # Nor another group's page, nor anything in the admin.
    assert manager.get(_page(sales)).status_code == 404
    assert manager.get("/admin/").status_code == 302


def test_the_groups_page_lists_ones_groups_and_links_those_one_manages(research: Group, alice: User) -> None:
    groups.add_member(research, alice, default=True)
    page = _as(alice).get("/accounts/groups/").content.decode()
    assert "research" in page and "(pays for your requests)" in page
    assert f'href="/accounts/groups/{research.pk}/"' in page
    assert _as(alice).get("/accounts/groups/").status_code == 200
    assert Client().get("/accounts/groups/").status_code == 302


def test_an_unknown_action_or_a_malformed_id_is_a_clear_4xx(research: Group, alice: User) -> None:
    manager = _as(alice)
    assert _post(manager, research, action="explode").status_code == 400
    assert _post(manager, research, action="revoke-key", key="1e9").status_code == 404
    assert _post(manager, research, action="revoke-key", key="9" * 40).status_code == 404
    assert manager.get("/accounts/groups/99999999/").status_code == 404


def test_a_superuser_sets_a_groups_members_and_managers_in_the_admin_and_it_is_audited(
    admin: User, alice: User, bob: User
) -> None:
    client = _as(admin)
    form = {
        "name": "research",
        "members": [str(alice.pk), str(bob.pk)],
        "profile-TOTAL_FORMS": "1",
        "profile-INITIAL_FORMS": "0",
        "profile-MIN_NUM_FORMS": "0",
        "profile-MAX_NUM_FORMS": "1",
        "profile-0-managers": [str(alice.pk)],
    }
    answer = client.post("/admin/auth/group/add/", form)
    assert answer.status_code == 302, answer.content.decode()[:3000]
    research = Group.objects.get(name="research")
    assert set(research.user_set.values_list("username", flat=True)) == {"alice", "bob"}
    assert list(research.profile.managers.values_list("username", flat=True)) == ["alice"]
    assert LogEntry.objects.filter(object_id=str(research.pk), user=admin).exists()
    form["members"] = [str(bob.pk)]
    form.update({"profile-INITIAL_FORMS": "1", "profile-0-group": str(research.pk)})
    assert client.post(f"/admin/auth/group/{research.pk}/change/", form).status_code == 302
    assert list(research.user_set.values_list("username", flat=True)) == ["bob"]
    change = LogEntry.objects.filter(object_id=str(research.pk)).first()
    assert change is not None and change.get_change_message() == "Changed members."


def test_staff_who_are_not_superusers_cannot_change_groups_in_the_admin(research: Group) -> None:
    staffer = make_user("staffer", is_staff=True)
    from django.contrib.auth.models import Permission

    staffer.user_permissions.set(Permission.objects.filter(codename__endswith="_group"))
    client = _as(staffer)
    assert client.post(f"/admin/auth/group/{research.pk}/change/", {"name": "renamed"}).status_code == 403
    assert client.post("/admin/auth/group/add/", {"name": "mine"}).status_code == 403
    assert list(Group.objects.values_list("name", flat=True)) == ["research"]


def _bill(group: Group, user: User, cost: str, *, status: int = 200, model: str = "acme/chat") -> None:
    UsageRecord.objects.create(
        user=user, group=group, model_public_id=model, prompt_tokens=10, completion_tokens=5, cost=Decimal(cost),
        status=status,
    )  # fmt: skip


def test_a_manager_sees_the_usage_billed_to_the_group_and_downloads_it(research: Group, alice: User) -> None:
    carol = User.objects.get(username="carol")
    _bill(research, carol, "0.25")
    _bill(research, carol, "0.00", status=429)
    _bill(research, alice, "0.50", model="acme/other")
    groups.add_member(groups.add_group("sales")[0], carol)
    UsageRecord.objects.create(user=carol, model_public_id="acme/chat", cost=Decimal("9"))  # not billed to research
    Limit.objects.create(group=research, budget_usd=Decimal("10"), budget_period="month")
    manager = _as(alice)
    page = manager.get(f"/accounts/groups/{research.pk}/usage/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "$0.75 spent of $10.00 this month" in html
    carol_row = 'data-user="carol"><td>carol</td><td class="num">2</td><td class="num">1</td><td class="num">30</td>'
    assert carol_row in html
    csv = manager.get(f"/accounts/groups/{research.pk}/usage.csv")
    assert csv.status_code == 200 and csv["Content-Type"].startswith("text/csv")
    lines = b"".join(csv.streaming_content).decode().splitlines()  # type: ignore[attr-defined]
    today = timezone.localdate().isoformat()
    assert lines == [
        "day,user,key,model,requests,errors,prompt_tokens,completion_tokens,cost_usd",
        f"{today},alice,,acme/other,1,0,10,5,0.50000000",
        f"{today},carol,,acme/chat,2,1,20,10,0.25000000",
    ]


@pytest.mark.parametrize("who", ["another user", "a member", "another group's manager", "staff"])
@pytest.mark.parametrize("report", ["usage/", "usage.csv"])
def test_nobody_but_its_managers_sees_a_groups_usage(
    research: Group, outsiders: dict[str, User], who: str, report: str
) -> None:
    _bill(research, User.objects.get(username="carol"), "1.00")
    answer = _as(outsiders[who]).get(f"/accounts/groups/{research.pk}/{report}")
    assert answer.status_code == 404
    assert Client().get(f"/accounts/groups/{research.pk}/{report}").status_code == 302  # to the sign-in
