"""What every Edgeflags ModelAdmin and inline shares: permissions asked of rollout/roles.py
and every save or delete made through the audited, role-checked services, so that a plain
admin form is a door like any other (one audit entry per row added, changed or deleted)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import FieldDoesNotExist
from django.db import models, transaction
from django.db.models import QuerySet
from django.forms import BaseModelFormSet, ModelForm
from django.http import HttpRequest

from rollout.audit import Actor
from rollout.roles import may
from rollout.services import fields_of, model_label, row_relations_save, row_save, rows_delete


def _model_fields(model: type[models.Model], names: list[str]) -> list[str]:
    """The form fields that are the model's own columns (not many-to-many, not extras)."""
    kept = []
    for name in names:
        try:
            field = model._meta.get_field(name)
        except FieldDoesNotExist:
            continue
        if field.concrete and not field.many_to_many:
            kept.append(name)
    return kept


def _before(row: models.Model, names: list[str]) -> dict[str, Any] | None:
    """The stored values of `names` of the row being edited (None for a new row)."""
    if row.pk is None or row._state.adding:
        return None
    stored = type(row)._default_manager.filter(pk=row.pk).first()
    return fields_of(stored, names) if stored is not None else None


class RoleChecked:
    """Add, change and delete as rollout/roles.py says (viewing stays with the groups'
    view permissions). A subclass that returns False for a verb keeps it closed."""

    model: type[models.Model]

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return may(request.user, "add", model_label(self.model))

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return may(request.user, "change", model_label(self.model))

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return may(request.user, "delete", model_label(self.model))


class AuditedAdmin(RoleChecked, admin.ModelAdmin):  # type: ignore[type-arg]
    """A ModelAdmin whose form saves, deletes and inline rows are audited services."""

    def save_model(self, request: HttpRequest, obj: Any, form: ModelForm, change: bool) -> None:  # type: ignore[type-arg]
        names = _model_fields(type(obj), list(form.changed_data))
        row_save(
            row=obj,
            actor=Actor.of(request.user),
            before=_before(obj, names) if change else None,
            changed=names,
        )

    def save_related(
        self,
        request: HttpRequest,
        form: ModelForm,  # type: ignore[type-arg]
        formsets: Any,
        change: bool,
    ) -> None:
        # As ModelAdmin.save_related, with the many-to-many save (a user's groups) audited.
        self._save_relations(request, form)
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        rows_delete(rows=[obj], actor=Actor.of(request.user))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        rows_delete(rows=list(queryset), actor=Actor.of(request.user))

    @transaction.atomic
    def save_formset(
        self,
        request: HttpRequest,
        form: ModelForm,  # type: ignore[type-arg]
        formset: BaseModelFormSet,  # type: ignore[type-arg]
        change: bool,
    ) -> None:
        actor = Actor.of(request.user)
        rows = formset.save(commit=False)
        rows_delete(rows=formset.deleted_objects, actor=actor, reason="removed in the admin")
        changed = {id(row): fields for row, fields in formset.changed_objects}
        for row in rows:
            names = _model_fields(type(row), list(changed.get(id(row), [])))
            new = id(row) not in changed
            if new:
                names = _model_fields(type(row), [f.name for f in row._meta.concrete_fields])
            before = None if new else _before(row, names)
            row_save(row=row, actor=actor, before=before, changed=names)
        for saved in formset.saved_forms:  # many-to-many (a rule's segments), row by row
            self._save_relations(request, saved)

    def _save_relations(self, request: HttpRequest, form: ModelForm) -> None:  # type: ignore[type-arg]
        row = form.instance
        names = [f.name for f in row._meta.many_to_many if f.name in form.changed_data]
        if names:
            row_relations_save(
                row=row, actor=Actor.of(request.user), names=names, save=form.save_m2m
            )
        else:
            form.save_m2m()
