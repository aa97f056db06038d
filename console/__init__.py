"""The rollout console: admin pages for release managers (overview, flag, segments, audit)."""
