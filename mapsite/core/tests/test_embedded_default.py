"""The embedded default, end to end: what ``scripts/run`` does on a fresh machine.

No DATABASE_URL pointing at a server and no CELERY_BROKER_URL: SQLite (in a temporary directory
here, instead of var/) and in-process tasks. Everything runs in subprocesses with a clean
environment, the way an operator runs it; the site is then served by ``runserver`` with
DEBUG off and probed over HTTP.
"""

import http.cookiejar
import json
import re
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = pytest.mark.embedded

ROOT = Path(__file__).resolve().parents[3]
COUNTS = """
import json
from lab.models import Person, Rig, Subject, WaterRestriction
from django.conf import settings
print(json.dumps({
    "people": Person.objects.count(),
    "rigs": Rig.objects.count(),
    "subjects": Subject.objects.count(),
    "water_restrictions": WaterRestriction.objects.count(),
    "dl25": list(WaterRestriction.objects.filter(water_restriction_number="dl25")
                 .values_list("subject__subject_id", flat=True)),
    "engine": settings.DATABASES["default"]["ENGINE"],
    "eager": settings.CELERY_TASK_ALWAYS_EAGER,
    "debug": settings.DEBUG,
}))
"""


def request(
    opener: urllib.request.OpenerDirector,
    url: str,
    data: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, str, str]:
    """(status, body, final URL) - HTTP errors are answers too, not exceptions."""
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    req = urllib.request.Request(url, data=body, headers=headers or {})
    try:
        with opener.open(req, timeout=20) as resp:
            return resp.status, resp.read().decode(errors="replace"), resp.geturl()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace"), url


def wait_until_serving(url: str, server: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"runserver exited with {server.returncode}")
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.25)
    raise AssertionError(f"{url} did not answer within {timeout} s")


def test_embedded_default_end_to_end(
    tmp_path: Path, clean_env: Callable, manage_py: list[str], free_port: int
) -> None:
    env = clean_env(
        DJANGO_SETTINGS_MODULE="mapsite.settings",
        DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3",
        CELERY_BROKER_URL="",  # explicit, so a developer's .env cannot add a broker
        DJANGO_STATIC_ROOT=str(tmp_path / "static"),
        DJANGO_MEDIA_ROOT=str(tmp_path / "media"),
    )

    def manage(*args: str, **extra_env: str) -> str:
        result = subprocess.run(
            [*manage_py, *args],
            env={**env, **extra_env},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, f"{args}:\n{result.stdout}{result.stderr}"
        return result.stdout

    def counts_now() -> dict:
        return json.loads(manage("shell", "--verbosity", "0", "-c", COUNTS).splitlines()[-1])

    manage("migrate", "--noinput")

    # Demo data: loaded once, and a second run changes nothing.
    first = manage("load_demo")
    counts = counts_now()
    assert counts["engine"] == "django.db.backends.sqlite3"
    assert counts["eager"] is True and counts["debug"] is False
    assert counts["people"] >= 4 and counts["rigs"] >= 7
    assert counts["subjects"] >= 1 and counts["subjects"] == counts["water_restrictions"]
    assert counts["dl25"] == [407513]
    assert "created" in first and "dl25" in first
    second = manage("load_demo")
    assert counts_now() == counts
    assert "nothing new" in second

    # Admin: the generated password is printed once, and kept on the next run.
    out = manage("ensure_admin")
    password = re.search(r"generated password: (\S+)", out).group(1)
    token = re.search(r"API token for 'admin': (\w+)", out).group(1)
    again = manage("ensure_admin")
    assert password not in again and f"API token for 'admin': {token}" in again

    manage("collectstatic", "--noinput", "--verbosity", "0")

    base = f"http://127.0.0.1:{free_port}"
    log = (tmp_path / "runserver.log").open("w")
    server = subprocess.Popen(
        [*manage_py, "runserver", f"127.0.0.1:{free_port}", "--noreload"],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until_serving(f"{base}/admin/login/", server)
        jar = http.cookiejar.CookieJar()
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))

        status, page, _ = request(browser, f"{base}/admin/login/")
        assert status == 200 and "csrfmiddlewaretoken" in page
        # DEBUG is off: admin CSS must still be served (whitenoise from STATIC_ROOT).
        status, css, _ = request(browser, f"{base}/static/admin/css/base.css")
        assert status == 200 and "body" in css

        anonymous = urllib.request.build_opener()
        status, _, _ = request(anonymous, f"{base}/api/")
        assert status in (401, 403)
        status, body, _ = request(
            anonymous, f"{base}/api/", headers={"Authorization": f"Token {token}"}
        )
        assert status == 200, body

        # Not logged in: the admin index sends us to the login page.
        status, _, final = request(browser, f"{base}/admin/")
        assert status == 200 and "/admin/login/" in final

        csrf = next(c.value for c in jar if c.name == "csrftoken")
        status, _, final = request(
            browser,
            f"{base}/admin/login/?next=/admin/",
            data={
                "username": "admin",
                "password": password,
                "csrfmiddlewaretoken": csrf,
                "next": "/admin/",
            },
        )
        assert status == 200 and final.endswith("/admin/"), final
        status, page, final = request(browser, f"{base}/admin/")
        assert status == 200 and final == f"{base}/admin/"
        assert "Log out" in page or "logout" in page
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
        log.close()
