from django.db import migrations


def load(apps, schema_editor):
    from psth import lookups

    lookups.load(apps)


class Migration(migrations.Migration):
    dependencies = [("psth", "0001_initial")]
    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
