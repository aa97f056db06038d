"""A rollout plan's included and excluded segments are stored as the segments' identities
("*" stays "*"), so that renaming a segment leaves the plan alone; people still read and
write keys (the API, the admin form and the audit log translate).

A key that names no segment is dropped from the list: it reached no segment before either,
and an identity cannot be kept for it. (Before, a plan could name a key that a later rename
would give to some segment; now a plan names segments that exist.)
"""

from django.db import migrations

import rollout.models.fields

SAVE_DATA_SEGMENT, SAVE_DATA_IDENTITY = "save-data", 0


def _identities(apps):
    CapabilitySegment = apps.get_model("segments", "CapabilitySegment")
    identities = dict(CapabilitySegment.objects.values_list("key", "identity"))
    identities[SAVE_DATA_SEGMENT] = SAVE_DATA_IDENTITY
    return identities


def _convert(apps, mapping):
    RolloutPlan = apps.get_model("rollout", "RolloutPlan")
    for plan in RolloutPlan.objects.all():
        for name in ("included_segments", "excluded_segments"):
            items = getattr(plan, name) or []
            setattr(plan, name, [i if i == "*" else mapping[i] for i in items if i in mapping or i == "*"])
        plan.save(update_fields=["included_segments", "excluded_segments"])


def keys_to_identities(apps, schema_editor):
    _convert(apps, _identities(apps))


def identities_to_keys(apps, schema_editor):
    _convert(apps, {identity: key for key, identity in _identities(apps).items()})


class Migration(migrations.Migration):
    dependencies = [
        ("rollout", "0006_segments_by_identity"),
        ("segments", "0002_capabilitysegment_merged_into"),
    ]

    operations = [
        migrations.RunPython(keys_to_identities, identities_to_keys),
        migrations.AlterField(
            model_name="rolloutplan",
            name="excluded_segments",
            field=rollout.models.fields.StrictJSONField(
                blank=True, default=list, help_text="Segment keys."
            ),
        ),
    ]
