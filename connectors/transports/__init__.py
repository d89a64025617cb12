"""Ingest transports: HTTP push, file drop, polling. Each hands raw inputs to a connector runtime."""
