from django.db import migrations


def load(apps, schema_editor):
    from lab import lookups

    lookups.load(
        apps,
        [
            "lab.AnimalStrain",
            "lab.AnimalSource",
            "lab.VirusSource",
            "lab.SkullReference",
            "lab.BrainArea",
            "lab.Hemisphere",
            "lab.PhotostimDevice",
            "lab.Whisker",
        ],
    )


class Migration(migrations.Migration):
    dependencies = [("lab", "0001_initial")]
    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
