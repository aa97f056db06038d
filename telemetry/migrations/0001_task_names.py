"""The fold and purge tasks moved from the rollout app to this one, and their Celery names
with them. Schedules already in django-celery-beat's tables belong to the operators (see
ops/schedules.py), so they are renamed here rather than recreated."""

from django.db import migrations

RENAMED = {
    "rollout.tasks.fold_telemetry": "telemetry.tasks.fold_telemetry",
    "rollout.tasks.purge_telemetry": "telemetry.tasks.purge_telemetry",
}


def _rename(apps, schema_editor, names):  # type: ignore[no-untyped-def]
    periodic_task = apps.get_model("django_celery_beat", "PeriodicTask")
    for old, new in names.items():
        periodic_task.objects.filter(task=old).update(task=new)


def forwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    _rename(apps, schema_editor, RENAMED)


def backwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    _rename(apps, schema_editor, {new: old for old, new in RENAMED.items()})


class Migration(migrations.Migration):
    dependencies = [("django_celery_beat", "0019_alter_periodictasks_options")]

    operations = [migrations.RunPython(forwards, backwards)]
