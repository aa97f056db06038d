"""Signals the segments app sends; rollout listens (segments may not import rollout)."""

from django.dispatch import Signal

# Sent after a new segmentation model is published (kwargs: version).
segmentation_published = Signal()
