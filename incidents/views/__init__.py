"""Incident pages: the agent workspace (queues, incident) and the self-service portal."""
