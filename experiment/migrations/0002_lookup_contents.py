from django.db import migrations


def load(apps, schema_editor):
    from experiment import lookups

    lookups.load(apps)


class Migration(migrations.Migration):
    dependencies = [("experiment", "0001_initial")]
    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
