"""Who reviews: staff, and the reviewers group, which Entra keeps in step with ENTRA_REVIEWER_GROUP."""

import pytest
from django.contrib.auth.models import Group

from generation import auth
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
GROUP_ID = "3f0c0000-0000-0000-0000-00000000beef"


def test_sign_in_adds_and_removes_the_reviewers_group_as_entra_says(settings) -> None:
    settings.ENTRA_REVIEWER_GROUP = GROUP_ID
    dana = UserFactory(username="dana")
    auth.apply_entra_groups(dana, {"groups": [GROUP_ID]})
    assert auth.is_reviewer(dana) and dana.groups.filter(name=auth.REVIEWER_GROUP).exists()
    auth.apply_entra_groups(dana, {"groups": []})
    assert not auth.is_reviewer(dana)


def test_without_the_setting_entra_leaves_the_group_as_staff_made_it(settings) -> None:
    settings.ENTRA_REVIEWER_GROUP = ""
    dana = UserFactory(username="dana")
    dana.groups.add(Group.objects.create(name=auth.REVIEWER_GROUP))  # added in the admin
    auth.apply_entra_groups(dana, {"groups": []})
    assert auth.is_reviewer(dana)


def test_staff_review_and_anonymous_visitors_do_not() -> None:
    from django.contrib.auth.models import AnonymousUser

    assert auth.is_reviewer(UserFactory(username="sam", is_staff=True))
    assert not auth.is_reviewer(UserFactory(username="dana")) and not auth.is_reviewer(AnonymousUser())
