from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from allauth.account import forms as allauth_forms
from django import forms
from django.conf import settings
from django.contrib.auth.models import Group
from django.utils import timezone

from accounts.groups import people, usable_models_for
from accounts.models import User
from catalogue.models import LanguageModel


class LoginForm(allauth_forms.LoginForm):
    """allauth's sign-in form; also takes `username` (the field's name before allauth, which scripts post)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        data = kwargs.get("data")
        if data is not None and "login" not in data and "username" in data:
            data = data.copy()
            data["login"] = data["username"]
            kwargs["data"] = data
        super().__init__(*args, **kwargs)

    def clean(self) -> Any:
        if not settings.LOCAL_LOGIN:
            raise forms.ValidationError("Passwords are turned off on this site: sign in with single sign-on.")
        return super().clean()


class SignupForm(allauth_forms.SignupForm):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "password2" in self.fields:
            self.fields["password2"].label = "Password confirmation"

    def clean(self) -> Any:
        if not settings.LOCAL_LOGIN:
            raise forms.ValidationError("Passwords are turned off on this site: sign up with single sign-on.")
        return super().clean()


class ApiKeyCreateForm(forms.Form):
    """A new API key: a name, an optional expiry day and an optional list of models it may call."""

    name = forms.CharField(
        max_length=100, help_text="To recognise the key later, e.g. the tool or machine that uses it."
    )
    expires_on = forms.DateField(
        required=False,
        label="Expires on",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Optional. The key stops working at the start of this day (UTC). Empty: never expires.",
    )
    allowed_models = forms.ModelMultipleChoiceField(
        queryset=LanguageModel.objects.none(),
        to_field_name="public_id",
        required=False,
        label="Models this key may call",
        widget=forms.CheckboxSelectMultiple,
        help_text="Optional. None ticked: every enabled model.",
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["allowed_models"]
        assert isinstance(field, forms.ModelMultipleChoiceField)
        field.queryset = usable_models_for(user).order_by("public_id")

    def clean_expires_on(self) -> date | None:
        day: date | None = self.cleaned_data.get("expires_on")
        if day is not None and day <= timezone.localdate():
            raise forms.ValidationError("Choose a day after today.")
        return day

    @property
    def expires_at(self) -> datetime | None:
        day = self.cleaned_data.get("expires_on")
        if day is None:
            return None
        return timezone.make_aware(datetime.combine(day, time.min))

    @property
    def model_ids(self) -> list[str]:
        return [model.public_id for model in self.cleaned_data.get("allowed_models") or []]


class GroupMemberForm(forms.Form):
    """A user to add to a group, by username (a group's service account is nobody to add)."""

    username = forms.CharField(max_length=150)

    def __init__(self, *args: Any, group: Group | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.group = group

    def clean_username(self) -> str:
        username: str = self.cleaned_data["username"].strip()
        user = people().filter(username=username, is_active=True).first()
        if user is None:
            raise forms.ValidationError(f"No user named {username!r}.")
        if self.group is not None and user.groups.filter(pk=self.group.pk).exists():
            raise forms.ValidationError(f"{username} is already a member.")
        self.member = user
        return username


class GroupKeyForm(forms.Form):
    """A new key of a group: a name to recognise it by."""

    name = forms.CharField(max_length=100, help_text="E.g. the script or machine that uses it.")

    def clean_name(self) -> str:
        name: str = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("The name may not be blank.")
        return name
