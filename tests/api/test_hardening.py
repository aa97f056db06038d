"""HTTP hardening (issue 12, point 4): HTTPS settings, CSP, admin lockout, hashed expiring
management tokens, API-key guessing throttled, private var/, CSV cells never formulas."""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from knox.models import AuthToken

from access.api_keys import api_key_revoke
from access.management_tokens import management_token_create
from ops.errors import DomainError
from rollout.audit import SYSTEM, Actor, audit_record
from rollout.models import AuditEntry, SnapshotVersion
from rollout.roles import RoleRequired
from rollout.snapshots.store import store
from tests.support.processes import REPO, child_env, manage

LONG_SECRET = "k3J9x-" + "Vq7TzR2mWpL8sYbN4cHfD6gA1eU0oI5j" * 2


def _deploy_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A production-like child environment (no command here touches the database)."""
    return child_env(
        {
            "DATABASE_URL": os.environ["DATABASE_URL"],
            "SECRET_KEY": LONG_SECRET,
            "EDGEFLAGS_VAR_DIR": str(tmp_path / "var"),
            "ALLOWED_HOSTS": "flags.example.com",
            **extra,
        }
    )


def test_check_deploy__https_on__no_warning_at_all(tmp_path) -> None:
    env = _deploy_env(tmp_path, EDGEFLAGS_HTTPS="true")

    completed = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr
    assert "no issues" in completed.stdout


_HTTPS_PROBE = """
import json
from django.test import Client
http = Client(HTTP_HOST="flags.example.com")
https = Client(HTTP_HOST="flags.example.com", HTTP_X_FORWARDED_PROTO="https")
login = http.get("/admin/login/")
secure = https.get("/admin/login/")
health = http.get("/healthz")
print(json.dumps({
    "redirect": [login.status_code, login.get("Location")],
    "hsts": secure.get("Strict-Transport-Security"),
    "cookies": {name: bool(m["secure"]) for name, m in secure.cookies.items()},
    "health": health.status_code,
}))
"""


def test_https_on__http_redirected_hsts_sent_cookies_secure_health_exempt(tmp_path) -> None:
    env = _deploy_env(tmp_path, EDGEFLAGS_HTTPS="true")

    seen = json.loads(manage(env, "shell", "-c", _HTTPS_PROBE).strip().splitlines()[-1])

    assert seen["redirect"] == [301, "https://flags.example.com/admin/login/"]
    assert seen["hsts"] == "max-age=31536000; includeSubDomains"
    assert seen["cookies"] == {"csrftoken": True}
    assert seen["health"] == 200


def test_var_dir__created_private(tmp_path) -> None:
    env = _deploy_env(tmp_path)
    env.pop("DATABASE_URL")  # the embedded mode keeps its SQLite file and broker in var/

    manage(env, "check")

    var = tmp_path / "var"
    assert stat.S_IMODE(var.stat().st_mode) == 0o700
    assert stat.S_IMODE((var / "broker" / "queue").stat().st_mode) == 0o700


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/admin/login/", "/demo/", "/api/docs/"])
def test_pages__csp_without_inline_script(client: Client, path: str) -> None:
    response = client.get(path, follow=True)

    policy = response["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"


def test_client_api__no_csp_on_json(api, client_key) -> None:
    response = api("POST", "/api/v1/evaluate", client_key, {"context": {"targetingKey": "u"}})

    assert response.status_code == 200
    assert "Content-Security-Policy" not in response


@pytest.fixture
def lockout(settings) -> None:
    settings.AXES_ENABLED = True


def _login(client: Client, password: str, address: str = "198.51.100.4") -> int:
    response = client.post(
        "/admin/login/?next=/admin/",
        {"username": "ops", "password": password},
        REMOTE_ADDR=address,
    )
    return response.status_code


@pytest.mark.django_db
def test_admin_login__five_wrong_passwords__right_one_refused_then_other_address_ok(
    lockout, client: Client
) -> None:
    User.objects.create_superuser("ops", "ops@example.com", "right-password-123")

    wrong = [_login(client, f"guess-{n}") for n in range(5)]
    locked = _login(client, "right-password-123")
    elsewhere = _login(Client(), "right-password-123", address="203.0.113.9")

    # The form again with its error, then the fifth failure locks the pair out.
    assert wrong == [200, 200, 200, 200, 429]
    assert locked == 429
    assert "_auth_user_id" not in client.session
    assert elsewhere == 302


@pytest.mark.django_db
def test_admin_login__success_resets_the_count(lockout, client: Client) -> None:
    User.objects.create_superuser("ops", "ops@example.com", "right-password-123")

    for n in range(4):
        _login(client, f"guess-{n}")
    assert _login(client, "right-password-123") == 302
    client.logout()
    again = [_login(client, f"again-{n}") for n in range(4)]

    assert again == [200] * 4
    assert _login(client, "right-password-123") == 302


@pytest.mark.django_db
def test_management_token__stored_as_digest_expires_and_audited(client: Client) -> None:
    user = User.objects.create_superuser("ops", "ops@example.com", "pw-for-tests-only")

    token, raw = management_token_create(user=user, actor=SYSTEM, ttl=timedelta(days=2))
    works = client.get("/api/v1/flags", HTTP_AUTHORIZATION=f"Token {raw}")
    AuthToken.objects.filter(pk=token.pk).update(expiry=timezone.now() - timedelta(seconds=1))
    expired = client.get("/api/v1/flags", HTTP_AUTHORIZATION=f"Token {raw}")

    assert raw not in {token.digest, token.token_key}
    assert not AuthToken.objects.filter(digest=raw).exists()
    assert works.status_code == 200
    assert expired.status_code == 401
    entry = AuditEntry.objects.get(action="authtoken.create")
    assert entry.after["tokenKey"] == raw[:15]
    assert raw not in json.dumps([entry.before, entry.after])


@pytest.mark.django_db
def test_management_token__only_superusers_create_never_forever() -> None:
    rm = User.objects.create_user("rm", password="pw", is_staff=True)
    boss = User.objects.create_superuser("boss", "b@example.com", "pw")

    with pytest.raises(RoleRequired):
        management_token_create(user=rm, actor=Actor.of(rm))
    with pytest.raises(DomainError, match="ttl"):
        management_token_create(user=boss, actor=Actor.of(boss), ttl=timedelta(days=400))


@pytest.mark.django_db
def test_admin__token_added_shown_once_and_revoked__both_audited(client: Client) -> None:
    boss = User.objects.create_superuser("boss", "b@example.com", "pw")
    client.force_login(boss)

    added = client.post("/admin/knox/authtoken/add/", {"user": boss.pk, "days": "7"}, follow=True)
    [message] = [str(m) for m in added.context["messages"] if "shown once" in str(m)]
    raw = message.rsplit(" ", 1)[-1]
    token = AuthToken.objects.get()
    revoked = client.post(f"/admin/knox/authtoken/{token.pk}/delete/", {"post": "yes"}, follow=True)

    assert added.status_code == 200
    assert token.token_key == raw[:15]
    assert timedelta(days=6.9) < token.expiry - timezone.now() <= timedelta(days=7)
    assert revoked.status_code == 200
    assert not AuthToken.objects.exists()
    assert list(AuditEntry.objects.values_list("action", flat=True).order_by("id")) == [
        "authtoken.create",
        "authtoken.revoke",
    ]


def test_api_key_guessing__throttled_per_address_any_key(api, client_key) -> None:
    guesses = [api("POST", "/api/v1/evaluate", f"efc_guess{n}", {}).status_code for n in range(10)]
    refused = api("POST", "/api/v1/evaluate", "efc_guess-more", {})
    even_right = api("POST", "/api/v1/evaluate", client_key, {})
    other = Client(REMOTE_ADDR="203.0.113.9").post(
        "/api/v1/evaluate",
        data="{}",
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {client_key}",
    )

    assert guesses == [401] * 10
    assert refused.status_code == 429
    assert refused.json()["errorCode"] == "RATE_LIMITED"
    assert refused.json()["errorDetails"].startswith("Authorization:")
    assert int(refused["Retry-After"]) >= 1
    assert even_right.status_code == 429
    assert other.status_code == 200


def test_api_key_guessing__revoked_key_is_no_guess(api, environment, publish) -> None:
    from access.api_keys import api_key_create
    from rollout.models import ApiKey

    _, raw = publish(lambda: api_key_create(environment=environment, scope="client", name="old"))
    publish(lambda: api_key_revoke(api_key=ApiKey.objects.get(name="old")))

    answers = {api("POST", "/api/v1/evaluate", raw, {}).status_code for _ in range(15)}

    assert answers == {401}


@pytest.mark.django_db
def test_audit_csv__formula_cells_escaped(client: Client) -> None:
    client.force_login(User.objects.create_superuser("boss", "b@example.com", "pw"))
    for reason in ('=HYPERLINK("http://evil.example","x")', "+1", "-2", "@SUM(A1)", "\tx"):
        audit_record(actor=SYSTEM, action="flag.change", reason=reason)
    audit_record(actor=SYSTEM, action="flag.change", reason="plain reason")

    response = client.get("/admin/console/audit.csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))

    reasons = sorted(row[8] for row in rows[1:])
    assert reasons == sorted(
        [
            '\'=HYPERLINK("http://evil.example","x")',
            "'+1",
            "'-2",
            "'@SUM(A1)",
            "'\tx",
            "plain reason",
        ]
    )


def test_client_api__503__says_when_to_retry(environment, client_key, api) -> None:
    SnapshotVersion.objects.filter(environment=environment).delete()
    store.reset()

    refused = api("POST", "/api/v1/evaluate", client_key, {"context": {}})

    assert refused.status_code == 503
    assert refused.json()["errorDetails"].startswith("snapshot: ")
    assert refused["Retry-After"] == "5"
