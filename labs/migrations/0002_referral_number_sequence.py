from django.db import migrations

SEQUENCE = "labs_referral_number_seq"


def create_number_source(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"CREATE SEQUENCE IF NOT EXISTS {SEQUENCE} START WITH 100001")
    else:
        counter = apps.get_model("labs", "ReferralNumberCounter")
        counter.objects.get_or_create(id=1, defaults={"last_number": 100000})


def drop_number_source(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP SEQUENCE IF EXISTS {SEQUENCE}")


class Migration(migrations.Migration):
    dependencies = [("labs", "0001_initial")]

    operations = [migrations.RunPython(create_number_source, drop_number_source)]
