"""Admin of problem management."""

from problems import admin_detection  # noqa: F401 - detection settings and candidates
