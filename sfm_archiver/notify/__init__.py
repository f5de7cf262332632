"""Telling people: alert conditions, digests and their delivery (Apprise targets, plain SMTP)."""
