"""optuna's tables live in their own PostgreSQL schema (the training storage URL's search_path)."""
from django.db import migrations


def create_schema(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("CREATE SCHEMA IF NOT EXISTS optuna")


class Migration(migrations.Migration):
    dependencies = [("backtests", "0003_training")]
    operations = [migrations.RunPython(create_schema, migrations.RunPython.noop)]
