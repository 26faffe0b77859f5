"""Quart-Trio front end: the Kestra-compatible /api/v1, websockets, SSE and the UI's static files."""
