"""The Content-Security-Policy in a real browser: every kind of page works under it, and
nothing on them (our scripts, the admin's, django-celery-beat's form) is refused."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

from tests.support.browser import STAFF_PASSWORD, WebServer, admin_login
from tests.support.processes import manage

# Records every violation the page reports (the browser also logs each as a console error,
# which the page fixture fails on; this names the directive and what was blocked).
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""

PAGES = [
    "/admin/",
    "/admin/rollout/flag/",
    "/admin/rollout/flag/add/",
    "/admin/django_celery_beat/periodictask/add/",
    "/admin/console/",
    "/admin/console/flags/lead-summary",
    "/admin/console/segments/",
    "/admin/console/audit/",
    "/demo/",
    "/api/docs/",
]


@pytest.fixture(scope="module")
def superuser(web: WebServer) -> str:
    manage(
        web.env,
        "shell",
        "-c",
        "from django.contrib.auth.models import User\n"
        f"User.objects.create_superuser('csp-admin', 'csp@example.com', {STAFF_PASSWORD!r})\n",
    )
    return "csp-admin"


def test_pages__under_the_policy__no_violation(page: Page, web: WebServer, superuser) -> None:
    page.add_init_script(RECORD_VIOLATIONS)
    admin_login(page, web, superuser, "/admin/")

    seen = {}
    for path in PAGES:
        response = page.goto(f"{web.url}{path}")
        assert response is not None
        assert response.status == 200, path
        policy = response.header_value("content-security-policy") or ""
        # Directive order is not fixed (django-csp builds the header from a mapping).
        assert "script-src 'self'" in [part.strip() for part in policy.split(";")], path
        page.wait_for_load_state("load")
        seen[path] = page.evaluate("window.__cspViolations")

    assert seen == {path: [] for path in PAGES}


def test_inline_script__injected__refused(page: Page, web: WebServer, console_log) -> None:
    """The policy bites: a script that got into a page's markup does not run."""
    console_log.allow("Content Security Policy")
    page.add_init_script(RECORD_VIOLATIONS)
    page.goto(f"{web.url}/demo/")

    page.evaluate(
        """() => {
          const script = document.createElement("script");
          script.textContent = "window.__ran = true";
          document.body.appendChild(script);
        }"""
    )

    assert page.evaluate("window.__ran === true") is False
    assert page.evaluate("window.__cspViolations")[0].startswith("script-src")


def test_api_docs__offline__operations_rendered_from_this_server_only(
    page: Page, web: WebServer, superuser
) -> None:
    elsewhere: list[str] = []
    page.route(
        "**/*",
        lambda route: (
            route.continue_()
            if route.request.url.startswith(web.url)
            else (elsewhere.append(route.request.url), route.abort())[1]
        ),
    )
    page.add_init_script(RECORD_VIOLATIONS)
    admin_login(page, web, superuser, "/admin/")

    page.goto(f"{web.url}/api/docs/")
    page.locator(".opblock-summary-path", has_text="/api/v1/probes/{clientId}").wait_for()

    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert "/api/v1/evaluate" in paths
    assert "/ofrep/v1/configuration" in paths
    assert elsewhere == []  # no CDN: Swagger UI comes from the package
    assert page.evaluate("window.__cspViolations") == []


def test_api_docs__signed_out__refused(page: Page, web: WebServer, console_log) -> None:
    console_log.allow("403")
    response = page.goto(f"{web.url}/api/docs/")

    assert response is not None
    assert response.status == 403
