"""URL routes: health, the client and management API, OpenAPI docs, the admin."""

from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from demo import views as demo
from ops import views as ops_views

urlpatterns = [
    path("healthz", ops_views.healthz, name="healthz"),
    path("favicon.ico", RedirectView.as_view(url=static("edgeflags/favicon.svg"), permanent=True)),
    path("readyz", ops_views.readyz, name="readyz"),
    path("metrics", ops_views.metrics, name="metrics"),
    path("demo/", demo.demo_page, name="demo"),
    path("demo/compose", demo.demo_compose, name="demo-compose"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its start-up script as a file of its own (?script), so the page
    # runs under the CSP's script-src 'self' with no inline script.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="swagger-ui"),
    path("", include("api.urls")),
    path("admin/console/", include("console.urls")),
    path("admin/", admin.site.urls),
]

handler404 = "api.http.not_found"
