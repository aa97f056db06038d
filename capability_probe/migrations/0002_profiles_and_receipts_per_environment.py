"""Profiles and probe receipts belong to one environment; receipts to one client's probe.

Existing profiles keep their data but get no environment: any environment's key could have
written them, so none may claim them. No key reads them any more (each client's next probe
writes its own, scoped profile), segmentation still fits on them, and the retention purges
them. Existing receipts only deduplicated retries in flight: they are dropped, not guessed
into an environment (a retry arriving across the upgrade is stored once more, harmlessly).
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("capability_probe", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="clientprofile",
            name="environment_id",
            field=models.BigIntegerField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name="clientprofile",
            name="client_hash",
            field=models.CharField(max_length=64),
        ),
        migrations.AddConstraint(
            model_name="clientprofile",
            constraint=models.UniqueConstraint(
                fields=("environment_id", "client_hash"), name="profile_one_per_client"
            ),
        ),
        migrations.DeleteModel(name="ProbeReceipt"),
        migrations.CreateModel(
            name="ProbeReceipt",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("environment_id", models.BigIntegerField()),
                ("client_hash", models.CharField(max_length=64)),
                ("probe_id", models.CharField(max_length=64)),
                ("fingerprint", models.CharField(max_length=64)),
                ("received_at", models.DateTimeField(db_index=True)),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("environment_id", "client_hash", "probe_id", "fingerprint"),
                        name="receipt_one_per_client_probe",
                    )
                ],
            },
        ),
    ]
