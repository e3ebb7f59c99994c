"""The engine server: HTTP API, realtime and dashboard (FastAPI)."""
