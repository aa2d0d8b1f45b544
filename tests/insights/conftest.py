"""Fixtures shared by insights' tests: the hand-computed week of test_measures (its docstring gives the figures)."""

from tests.insights.test_measures import week  # noqa: F401
