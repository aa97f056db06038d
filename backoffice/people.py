"""Users, groups and API tokens in the admin: superusers only (rollout/roles.py), and every
change audited like any other, since putting someone in a group is granting a role."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group, User
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from knox.models import AuthToken

from access.management_tokens import (
    MAX_TTL,
    default_ttl,
    management_token_create,
    management_token_revoke,
)
from backoffice.base import AuditedAdmin
from rollout.audit import Actor, audit_record

for model in (User, Group, AuthToken):
    if admin.site.is_registered(model):
        admin.site.unregister(model)


@admin.register(User)
class UserAdmin(AuditedAdmin, DjangoUserAdmin[User]):
    view_permissions = {"user_change_password": ("change", "auth.user")}

    def user_change_password(
        self, request: HttpRequest, id: str, form_url: str = ""
    ) -> HttpResponse:
        # Django checks the change permission (ours: superusers) and saves the form itself.
        response = super().user_change_password(request, id, form_url)
        if request.method == "POST" and response.status_code == 302:
            audit_record(
                actor=Actor.of(request.user),
                action="user.password",
                after={"object": f"user {id}"},
                reason="password set in the admin",
            )
        return response


@admin.register(Group)
class GroupAdmin(AuditedAdmin, DjangoGroupAdmin):
    pass


class TokenAddForm(forms.ModelForm):  # type: ignore[type-arg]
    """A new token: whose, and for how many days (the token is made by the service)."""

    days = forms.FloatField(
        min_value=0.01,
        max_value=MAX_TTL.days,
        help_text="Lifetime; the token stops working after it.",
    )

    class Meta:
        model = AuthToken
        fields = ["user"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["days"].initial = default_ttl().days
        user_field = self.fields["user"]
        assert isinstance(user_field, forms.ModelChoiceField)
        user_field.queryset = User.objects.filter(is_active=True, is_staff=True)


@admin.register(AuthToken)
class TokenAdmin(AuditedAdmin):
    """Management-API tokens: added (shown once) and revoked; never edited."""

    list_display = ("token_key", "user", "created", "expiry")
    search_fields = ("token_key", "user__username")
    readonly_fields = ("token_key", "user", "created", "expiry")
    fields = ("token_key", "user", "created", "expiry")
    actions = None

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        if obj is None:
            kwargs["form"] = TokenAddForm
            kwargs["fields"] = ["user", "days"]
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.readonly_fields if obj is not None else ()

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.fields if obj is not None else ["user", "days"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        token, raw = management_token_create(
            user=form.cleaned_data["user"],
            actor=Actor.of(request.user),
            ttl=timedelta(days=form.cleaned_data["days"]),
            reason="created in the admin",
        )
        # The admin goes on with `obj` (its log entry, the redirect): make it the new row.
        obj.digest, obj.token_key, obj.created, obj.expiry = (
            token.digest,
            token.token_key,
            token.created,
            token.expiry,
        )
        obj._state.adding = False
        self.message_user(
            request, f"Token for {token.user}, shown once — copy it now: {raw}", messages.WARNING
        )

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        pass  # a token has no relations beyond its user, set by the service

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        management_token_revoke(
            token=obj, actor=Actor.of(request.user), reason="revoked in the admin"
        )

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for token in queryset:
            self.delete_model(request, token)
