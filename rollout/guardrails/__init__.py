"""Guardrail statistics: sequential tests that stay valid however often they are checked.

Pure functions over aggregate counts (see docs/guardrails.md); the rollout
controller feeds them the per-arm aggregates of a segment and acts on the verdicts.
"""
