"""Routes of the client API (evaluate, OFREP, probes, events) and the management API."""

from django.urls import URLPattern, URLResolver

urlpatterns: list[URLPattern | URLResolver] = []
