"""Users, groups and API tokens in the admin: superusers only (rollout/roles.py), and every
change audited like any other, since putting someone in a group is granting a role."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group, User
from django.http import HttpRequest, HttpResponse
from rest_framework.authtoken.admin import TokenAdmin as DrfTokenAdmin
from rest_framework.authtoken.models import TokenProxy

from rollout.admin_base import AuditedAdmin
from rollout.audit import Actor, audit_record

for model in (User, Group, TokenProxy):
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


@admin.register(TokenProxy)
class TokenAdmin(AuditedAdmin, DrfTokenAdmin):
    pass
