"""Segment rollouts, metric buckets and audit entries refer to a capability segment by its
stable identity instead of its key, so that renaming a segment keeps its rollout state and
its guardrail evidence.

Existing rows are mapped through segments.CapabilitySegment (the save-data segment, which has
no row, is identity 0). Rows whose key names no segment any more cannot be mapped: their
evidence belongs to nothing a rollout can reach, and they are deleted.
"""

from django.db import migrations, models

SAVE_DATA_SEGMENT, SAVE_DATA_IDENTITY = "save-data", 0


def _identities(apps):
    CapabilitySegment = apps.get_model("segments", "CapabilitySegment")
    identities = dict(CapabilitySegment.objects.values_list("key", "identity"))
    identities[SAVE_DATA_SEGMENT] = SAVE_DATA_IDENTITY
    return identities


def keys_to_identities(apps, schema_editor):
    identities = _identities(apps)
    for name in ("SegmentRollout", "MetricBucket"):
        model = apps.get_model("rollout", name)
        for key in set(model.objects.values_list("segment", flat=True)):
            rows = model.objects.filter(segment=key)
            if key in identities:
                rows.update(segment_identity=identities[key])
            else:
                rows.delete()
    AuditEntry = apps.get_model("rollout", "AuditEntry")
    for key, identity in identities.items():
        AuditEntry.objects.filter(segment=key).update(segment_identity=identity)


def identities_to_keys(apps, schema_editor):
    keys = {identity: key for key, identity in _identities(apps).items()}
    for name in ("SegmentRollout", "MetricBucket"):
        model = apps.get_model("rollout", name)
        for identity in set(model.objects.values_list("segment_identity", flat=True)):
            model.objects.filter(segment_identity=identity).update(
                segment=keys.get(identity, f"segment-{identity}")
            )


class Migration(migrations.Migration):
    dependencies = [
        ("rollout", "0005_strict_json_fields_publish_failure"),
        ("segments", "0002_capabilitysegment_merged_into"),
    ]

    operations = [
        migrations.RemoveConstraint(model_name="segmentrollout", name="one_rollout_per_segment"),
        migrations.RemoveConstraint(model_name="metricbucket", name="one_bucket_per_minute"),
        migrations.RemoveIndex(model_name="metricbucket", name="bucket_lookup"),
        migrations.AddField(
            model_name="segmentrollout",
            name="segment_identity",
            field=models.PositiveIntegerField(null=True),
        ),
        migrations.AddField(
            model_name="metricbucket",
            name="segment_identity",
            field=models.PositiveIntegerField(null=True),
        ),
        migrations.AddField(
            model_name="auditentry",
            name="segment_identity",
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.RunPython(keys_to_identities, identities_to_keys),
        # A default first, so that going back re-adds the key columns to existing rows.
        migrations.AlterField(
            model_name="segmentrollout",
            name="segment",
            field=models.CharField(default="", max_length=63),
        ),
        migrations.AlterField(
            model_name="metricbucket",
            name="segment",
            field=models.CharField(default="", max_length=63),
        ),
        migrations.RemoveField(model_name="segmentrollout", name="segment"),
        migrations.RemoveField(model_name="metricbucket", name="segment"),
        migrations.AlterField(
            model_name="segmentrollout",
            name="segment_identity",
            field=models.PositiveIntegerField(
                help_text="The capability segment's identity (0: the save-data segment)."
            ),
        ),
        migrations.AlterField(
            model_name="metricbucket",
            name="segment_identity",
            field=models.PositiveIntegerField(help_text="The capability segment's identity."),
        ),
        migrations.AlterModelOptions(
            name="segmentrollout",
            options={"ordering": ["plan", "segment_identity"]},
        ),
        migrations.AddConstraint(
            model_name="segmentrollout",
            constraint=models.UniqueConstraint(
                fields=("plan", "segment_identity"), name="one_rollout_per_segment"
            ),
        ),
        migrations.AddConstraint(
            model_name="metricbucket",
            constraint=models.UniqueConstraint(
                fields=("environment", "flag", "segment_identity", "arm", "minute"),
                name="one_bucket_per_minute",
            ),
        ),
        migrations.AddIndex(
            model_name="metricbucket",
            index=models.Index(
                fields=["environment", "flag", "segment_identity", "minute"], name="bucket_lookup"
            ),
        ),
    ]
