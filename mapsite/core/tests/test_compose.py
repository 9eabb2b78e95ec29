"""docker-compose.yml and the Dockerfile must only name things that exist in this project.

There is no Docker engine in CI, so instead of starting containers these tests check every
command, import path, queue and environment variable the deployment files refer to.
"""

import importlib
import re
import shlex
from pathlib import Path

import pytest
import yaml
from celery.app.utils import find_app
from django.core.management import get_commands

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict] = COMPOSE["services"]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
SETTINGS_SOURCE = "\n".join(
    p.read_text() for p in sorted((ROOT / "mapsite" / "settings").glob("*.py"))
)
# Services running this project's image (built from the Dockerfile).
APP_SERVICES = {name: svc for name, svc in SERVICES.items() if "build" in svc}
QUEUES = {"ingest", "compute", "transfer"}


def argv(service: dict) -> list[str]:
    command = service.get("command", [])
    return shlex.split(command) if isinstance(command, str) else [str(a) for a in command]


def option(args: list[str], short: str, long: str) -> str | None:
    """Value of ``-X value``, ``--long value`` or ``--long=value`` in a command line."""
    for i, arg in enumerate(args):
        if arg in (short, long) and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(long + "="):
            return arg.split("=", 1)[1]
    return None


def celery_services(subcommand: str) -> dict[str, list[str]]:
    return {
        name: args
        for name, svc in APP_SERVICES.items()
        if (args := argv(svc)) and args[0] == "celery" and subcommand in args
    }


def dockerfile_runs() -> list[str]:
    joined = re.sub(r"\\\n", " ", DOCKERFILE)
    return [m.group(1) for m in re.finditer(r"^RUN\s+(.*)$", joined, flags=re.M)]


def test_expected_services_exist() -> None:
    assert SERVICES["postgres"]["image"] == "postgres:15"
    assert any(v.endswith(":/var/lib/postgresql/data") for v in SERVICES["postgres"]["volumes"])
    assert "pg_isready" in " ".join(SERVICES["postgres"]["healthcheck"]["test"])
    assert SERVICES["redis"]["image"] == "redis:7"
    assert {"web", "beat"} <= set(APP_SERVICES)
    assert celery_services("worker"), "no Celery worker service"


def test_app_services_use_production_settings() -> None:
    for name, svc in APP_SERVICES.items():
        env = svc["environment"]
        assert env["DJANGO_SETTINGS_MODULE"] == "mapsite.settings.production", name
        importlib.import_module(env["DJANGO_SETTINGS_MODULE"].rsplit(".", 1)[0])
        assert env["DATABASE_URL"].startswith("postgres://"), name
        assert env["CELERY_BROKER_URL"].startswith("redis://redis:6379"), name
        assert "${DJANGO_SECRET_KEY:?" in env["DJANGO_SECRET_KEY"], "secret must come from env"


def test_every_environment_variable_is_read_by_the_settings() -> None:
    for name, svc in APP_SERVICES.items():
        for key in svc["environment"]:
            if key == "DJANGO_SETTINGS_MODULE":  # read by Django itself, not by the settings
                continue
            assert re.search(rf"[\"']{re.escape(key)}[\"']", SETTINGS_SOURCE), (
                f"{name} sets {key}, which mapsite/settings/*.py never reads"
            )


@pytest.mark.filterwarnings("ignore:No directory at:UserWarning")  # whitenoise, no collectstatic
def test_web_serves_the_wsgi_application_with_gunicorn() -> None:
    args = argv(SERVICES["web"])
    assert args[0] == "gunicorn"
    assert option(args, "-b", "--bind") == "0.0.0.0:8000"
    targets = [a for a in args[1:] if not a.startswith("-") and ":" in a]
    assert targets == ["mapsite.wsgi:application"]
    module, attr = targets[0].split(":")
    assert callable(getattr(importlib.import_module(module), attr))


def test_migrations_run_before_anything_uses_the_database() -> None:
    migrate = [n for n, s in APP_SERVICES.items() if argv(s)[-2:] == ["migrate", "--noinput"]]
    assert migrate == ["migrate"]
    for name in APP_SERVICES.keys() - {"migrate"}:
        condition = SERVICES[name]["depends_on"]["migrate"]["condition"]
        assert condition == "service_completed_successfully", name


def test_static_files_are_collected_into_the_image() -> None:
    assert any("manage.py collectstatic --noinput" in run for run in dockerfile_runs())


def test_manage_py_commands_exist() -> None:
    commands = get_commands()
    lines = [argv(s) for s in APP_SERVICES.values()]
    lines += [shlex.split(run) for run in dockerfile_runs()]
    called = [args[i + 1] for args in lines for i, a in enumerate(args[:-1]) if a == "manage.py"]
    assert called, "no manage.py command found at all"
    missing = [c for c in called if c not in commands]
    assert not missing, f"unknown manage.py commands: {missing}"


def test_celery_app_and_queues_exist() -> None:
    consumed: set[str] = set()
    for name, args in {**celery_services("worker"), **celery_services("beat")}.items():
        app = find_app(option(args, "-A", "--app"))
        declared = {q.name for q in app.conf.task_queues}
        assert declared == QUEUES
        if "worker" in args:
            queues = set(option(args, "-Q", "--queues").split(","))
            assert queues <= declared, f"{name} consumes undeclared queues {queues - declared}"
            consumed |= queues
    assert consumed == QUEUES, f"no worker consumes {QUEUES - consumed}"


def test_exactly_one_beat() -> None:
    beats = celery_services("beat")
    assert list(beats) == ["beat"]
    svc = SERVICES["beat"]
    assert svc.get("deploy", {}).get("replicas", 1) == 1 and svc.get("scale", 1) == 1


@pytest.mark.parametrize("target", ["/data/behavior", "/data/ephys"])
def test_only_the_transfer_worker_may_write_the_data_shares(target: str) -> None:
    """Reading is enough to ingest; only Globus archival deletes sources after transfer."""
    modes = {}
    for name, svc in APP_SERVICES.items():
        for volume in svc.get("volumes", []):
            parts = re.sub(r"\$\{[^}]*\}", "HOST", volume).split(":")
            if parts[1] == target:
                modes[name] = parts[2] if len(parts) > 2 else "rw"
    workers = celery_services("worker")
    transfer = {n for n, a in workers.items() if "transfer" in option(a, "-Q", "--queues")}
    assert transfer and all(modes.get(n) == "rw" for n in transfer)
    assert modes.get("web") == "ro"
    assert {n for n, m in modes.items() if m != "ro"} == transfer


def test_dockerfile_installs_requirements_as_non_root() -> None:
    assert re.search(r"^FROM python:3\.11-slim\b", DOCKERFILE, flags=re.M)
    assert re.search(r"^COPY .*requirements\.txt", DOCKERFILE, flags=re.M)
    assert any(re.search(r"pip install .*-r requirements\.txt", run) for run in dockerfile_runs())
    users = re.findall(r"^USER\s+(\S+)", DOCKERFILE, flags=re.M)
    assert users and users[-1] not in ("root", "0")


def test_dockerignore_keeps_local_state_out_of_the_image() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".venv", ".env", "var", ".git"} <= ignored
