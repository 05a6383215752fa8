"""The risk service: HTTP and WebSocket API, live monitoring, alerts and the dashboard."""
