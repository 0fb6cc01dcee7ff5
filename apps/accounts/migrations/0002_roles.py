"""Create the role groups. Their permissions are set by roles.sync_roles after every migrate,
so permissions of apps added later join the roles too."""
from django.db import migrations

ROLES = ("Admin", "Operator", "Trader", "Viewer")


def create_roles(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for name in ROLES:
        Group.objects.get_or_create(name=name)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial"), ("auth", "0012_alter_user_first_name_max_length")]
    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
