"""The Django admin (/admin/): one module per concern, each registering its ModelAdmins.

The admin is a door like the API and the console: every change it offers calls the owning
app's audited service (`backoffice/base.py` for plain rows), never the ORM directly.
Django's autodiscovery imports this module; importing the others registers them.
"""

from backoffice import (
    edge_models,
    environments,
    flags,
    heartbeats,
    people,
    profiles,
    quarantine,
    retraining,
    schedules,
    segments,
)

__all__ = [
    "edge_models",
    "environments",
    "flags",
    "heartbeats",
    "people",
    "profiles",
    "quarantine",
    "retraining",
    "schedules",
    "segments",
]
