"""Production configuration and first-login bootstrap.

``check --deploy`` runs in a subprocess because production settings are a different settings
module from the one the test run has loaded.
"""

import re
import secrets
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from rest_framework.authtoken.models import Token

ROOT = Path(__file__).resolve().parents[3]
PRODUCTION = {
    "DJANGO_SETTINGS_MODULE": "mapsite.settings.production",
    "DJANGO_ALLOWED_HOSTS": "example.org",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/postgres",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
}


def run(cmd: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_check_deploy_reports_nothing(clean_env: Callable, manage_py: list[str]) -> None:
    env = clean_env(**PRODUCTION, DJANGO_SECRET_KEY=secrets.token_urlsafe(48))
    result = run([*manage_py, "check", "--deploy", "--fail-level", "WARNING"], env)
    assert result.returncode == 0, result.stdout + result.stderr
    # Nothing found *and* nothing silenced: a silenced deploy warning is still a hole.
    assert "System check identified no issues (0 silenced)." in result.stdout
    assert "WARNING" not in result.stderr


def _env_file_sets_secret() -> bool:
    env_file = ROOT / ".env"
    return env_file.exists() and "DJANGO_SECRET_KEY" in env_file.read_text()


@pytest.mark.parametrize(
    "secret",
    [
        pytest.param(
            None,
            id="missing",
            marks=pytest.mark.skipif(_env_file_sets_secret(), reason=".env sets the key"),
        ),
        pytest.param("", id="empty"),
        pytest.param("insecure-embedded-default-key-change-me", id="embedded-default"),
        pytest.param("insecure-" + "x" * 60, id="insecure-prefix"),
        pytest.param(secrets.token_urlsafe(36)[:49], id="49-chars"),
    ],
)
def test_production_refuses_missing_or_insecure_secret_key(
    clean_env: Callable, manage_py: list[str], secret: str | None
) -> None:
    env = clean_env(**PRODUCTION)
    if secret is not None:
        env["DJANGO_SECRET_KEY"] = secret
    result = run([*manage_py, "check"], env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_production_refuses_to_run_tasks_in_process(
    clean_env: Callable, manage_py: list[str]
) -> None:
    env = clean_env(**PRODUCTION, DJANGO_SECRET_KEY=secrets.token_urlsafe(48))
    env["CELERY_BROKER_URL"] = ""
    result = run([*manage_py, "check"], env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and "CELERY_BROKER_URL" in result.stderr


# --- manage.py ensure_admin ----------------------------------------------------------------------


def ensure_admin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, **env: str) -> str:
    monkeypatch.delenv("MAP_ADMIN_USER", raising=False)
    monkeypatch.delenv("MAP_ADMIN_PASSWORD", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    call_command("ensure_admin")
    return capsys.readouterr().out


@pytest.mark.django_db
def test_ensure_admin_generates_a_password_once(monkeypatch, capsys) -> None:
    out = ensure_admin(monkeypatch, capsys)
    password = re.search(r"generated password: (\S+)", out).group(1)
    user = get_user_model().objects.get(username="admin")
    assert user.is_superuser and user.is_staff and user.is_active
    assert user.check_password(password)
    assert len(password) >= 20

    again = ensure_admin(monkeypatch, capsys)
    assert "already exists" in again
    assert password not in again and "generated password" not in again
    user.refresh_from_db()
    assert user.check_password(password), "an existing password must not change"
    assert get_user_model().objects.filter(username="admin").count() == 1


@pytest.mark.django_db
def test_ensure_admin_takes_user_and_password_from_environment(monkeypatch, capsys) -> None:
    out = ensure_admin(monkeypatch, capsys, MAP_ADMIN_USER="curator", MAP_ADMIN_PASSWORD="s3cret!x")
    assert "generated password" not in out and "s3cret!x" not in out
    user = get_user_model().objects.get(username="curator")
    assert user.is_superuser and user.check_password("s3cret!x")
    assert not get_user_model().objects.filter(username="admin").exists()

    # Setting MAP_ADMIN_PASSWORD again resets the password of the existing user.
    ensure_admin(monkeypatch, capsys, MAP_ADMIN_USER="curator", MAP_ADMIN_PASSWORD="n3w-pass!y")
    user.refresh_from_db()
    assert user.check_password("n3w-pass!y")


@pytest.mark.django_db
def test_ensure_admin_prints_a_stable_api_token(monkeypatch, capsys) -> None:
    first = ensure_admin(monkeypatch, capsys, MAP_ADMIN_PASSWORD="long-enough-pass-123")
    second = ensure_admin(monkeypatch, capsys)
    key = re.search(r"API token for 'admin': (\w+)", first).group(1)
    assert Token.objects.get(user__username="admin").key == key
    assert f"API token for 'admin': {key}" in second
    assert Token.objects.count() == 1


@pytest.mark.django_db
def test_ensure_admin_restores_superuser_rights(monkeypatch, capsys) -> None:
    get_user_model().objects.create_user("admin", password="whatever-123", is_staff=False)
    ensure_admin(monkeypatch, capsys)
    user = get_user_model().objects.get(username="admin")
    assert user.is_superuser and user.is_staff
    assert user.check_password("whatever-123")


# --- the README's configuration table ------------------------------------------------------------


def test_readme_documents_exactly_the_variables_the_settings_read() -> None:
    source = "\n".join(p.read_text() for p in (ROOT / "mapsite" / "settings").glob("*.py"))
    read = set(re.findall(r"env(?:\.\w+)?\(\s*[\"']([A-Z][A-Z0-9_]+)[\"']", source))
    read |= set(re.findall(r"environ(?:\.get|\.setdefault)?\(\s*[\"']([A-Z][A-Z0-9_]+)", source))
    assert {"DJANGO_SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL"} <= read
    readme = (ROOT / "README.md").read_text()
    documented = set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", readme, flags=re.M))
    assert read - documented == set(), "settings read variables the README does not document"
    assert documented - read - {"DJANGO_SETTINGS_MODULE"} == set(), "README documents unknowns"
