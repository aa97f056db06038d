from django.apps import AppConfig


class AccessConfig(AppConfig):
    """Who may do what: API keys, management tokens, people and roles in the admin, signed
    client identities and the decision tokens that make telemetry unforgeable.

    No models of its own: keys and environments are rollout's, tokens knox's, people Django's.
    """

    name = "access"
