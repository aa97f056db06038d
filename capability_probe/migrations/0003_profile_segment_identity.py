"""A profile refers to its capability segment by the segment's stable identity instead of
its key, so that renaming a segment changes nothing in the profiles.

Existing keys are mapped through segments.CapabilitySegment (the save-data segment, which has
no row, is identity 0); a key that names no segment any more leaves the identity empty until
the next segmentation run assigns one.
"""

from django.db import migrations, models

SAVE_DATA_SEGMENT, SAVE_DATA_IDENTITY = "save-data", 0


def _identities(apps):
    CapabilitySegment = apps.get_model("segments", "CapabilitySegment")
    identities = dict(CapabilitySegment.objects.values_list("key", "identity"))
    identities[SAVE_DATA_SEGMENT] = SAVE_DATA_IDENTITY
    return identities


def keys_to_identities(apps, schema_editor):
    ClientProfile = apps.get_model("capability_probe", "ClientProfile")
    for key, identity in _identities(apps).items():
        ClientProfile.objects.filter(segment_key=key).update(segment_identity=identity)


def identities_to_keys(apps, schema_editor):
    ClientProfile = apps.get_model("capability_probe", "ClientProfile")
    for key, identity in _identities(apps).items():
        ClientProfile.objects.filter(segment_identity=identity).update(segment_key=key)


class Migration(migrations.Migration):
    dependencies = [
        ("capability_probe", "0002_profiles_and_receipts_per_environment"),
        ("segments", "0002_capabilitysegment_merged_into"),
    ]

    operations = [
        migrations.AddField(
            model_name="clientprofile",
            name="segment_identity",
            field=models.PositiveIntegerField(blank=True, db_index=True, null=True),
        ),
        migrations.RunPython(keys_to_identities, identities_to_keys),
        migrations.RemoveField(model_name="clientprofile", name="segment_key"),
    ]
