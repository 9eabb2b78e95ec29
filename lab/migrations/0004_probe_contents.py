from django.db import migrations


def load(apps, schema_editor):
    from lab import lookups

    lookups.load(apps, ["lab.ProbeType"])
    lookups.load_probe_geometry(apps)


class Migration(migrations.Migration):
    dependencies = [("lab", "0003_probes")]
    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
