"""What every database benchmark needs: its own PostgreSQL database, migrated, and a subject.

Each benchmark imports this as ``_common`` (``bench/`` is on ``sys.path`` when a script in it
runs). A benchmark database is never the test or development one.
"""

import os
from typing import Any


def setup_django(database_url: str, *, migrate: bool = True) -> None:
    """Point Django at the benchmark database (created if missing) and migrate it.

    ``migrate=False`` only sets Django up (a child process of a benchmark that already did).
    """
    os.environ["DJANGO_SETTINGS_MODULE"] = "mapsite.settings.test"
    os.environ["DATABASE_URL"] = database_url  # overrides any DATABASE_URL of the caller
    os.environ.setdefault("LOG_LEVEL", "WARNING")  # not one INFO line per ingested session
    if migrate:
        import psycopg

        name = database_url.rsplit("/", 1)[-1]
        admin_url = database_url.rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin_url, autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                conn.execute(f'CREATE DATABASE "{name}"')
                print(f"created database {name}")
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)


def bench_subject(subject_id: int, h2o: str) -> tuple[Any, Any, Any]:
    """The subject (with water restriction ``h2o``), rig RRig and ingest user; created once."""
    from django.conf import settings

    from lab.models import AnimalSource, Person, Rig, Subject, WaterRestriction

    rig, _ = Rig.objects.get_or_create(name="RRig", defaults={"room": "bench"})
    person, _ = Person.objects.get_or_create(username=settings.SESSION_DEFAULT_USER)
    subject, _ = Subject.objects.get_or_create(
        subject_id=subject_id,
        defaults={
            "sex": "M",
            "date_of_birth": "2017-10-13",
            "cage_number": 1,
            "source": AnimalSource.objects.first(),
            "responsible": person,
        },
    )
    WaterRestriction.objects.get_or_create(
        subject=subject,
        defaults={
            "water_restriction_number": h2o,
            "cage_number": 1,
            "wr_start_date": "2018-01-22",
            "wr_start_weight": "25.5",
        },
    )
    return subject, rig, person
