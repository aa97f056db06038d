"""The rollout tests' edge feature, plan and aggregate feeder, for the console's tests too."""

from tests.rollouts.conftest import edge_flag, feed, plan

__all__ = ["edge_flag", "feed", "plan"]
