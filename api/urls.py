"""Routes of the client API (evaluate, OFREP, snapshot) and the management API."""

from django.urls import URLPattern, URLResolver, path, re_path

from api import client, events, management, network, privacy, probes

urlpatterns: list[URLPattern | URLResolver] = [
    path("api/v1/evaluate", client.evaluate_view, name="evaluate"),
    path("api/v1/snapshot", client.snapshot_view, name="snapshot"),
    path("ofrep/v1/configuration", client.ofrep_configuration_view, name="ofrep-configuration"),
    path("ofrep/v1/evaluate/flags", client.ofrep_bulk_view, name="ofrep-bulk"),
    # <path:> so that flag keys containing "/" route to the single-flag endpoint.
    path("ofrep/v1/evaluate/flags/<path:key>", client.ofrep_flag_view, name="ofrep-flag"),
    path("api/v1/probes", probes.probe_create_view, name="probe-create"),
    path("api/v1/network/ping", network.ping_view, name="network-ping"),
    path("api/v1/network/download", network.download_view, name="network-download"),
    path("api/v1/probes/<path:client_id>", probes.probe_erase_view, name="probe-erase"),
    path("api/v1/events", events.events_view, name="events"),
    path("api/v1/privacy", privacy.privacy_notice_view, name="privacy-notice"),
    path("api/v1/privacy/erase", privacy.privacy_erase_view, name="privacy-erase"),
    path("api/v1/flags", management.FlagListApi.as_view(), name="flag-list"),
    re_path(
        r"^api/v1/flags/(?P<key>.+)/models$",
        management.ModelVersionListApi.as_view(),
        name="flag-models",
    ),
    re_path(
        r"^api/v1/flags/(?P<key>.+)/environments/(?P<environment>[^/]+)$",
        management.FlagStateUpdateApi.as_view(),
        name="flag-state",
    ),
    re_path(
        r"^api/v1/rollouts/(?P<flag>.+)/(?P<environment>[^/]+)/segments/(?P<segment>[^/]+)/"
        r"(?P<action>[^/]+)$",
        management.SegmentActionApi.as_view(),
        name="rollout-segment-action",
    ),
    re_path(
        r"^api/v1/rollouts/(?P<flag>.+)/(?P<environment>[^/]+)/kill$",
        management.KillApi.as_view(),
        name="rollout-kill",
    ),
    re_path(
        r"^api/v1/rollouts/(?P<flag>.+)/(?P<environment>[^/]+)$",
        management.RolloutApi.as_view(),
        name="rollout",
    ),
]
