"""The service's REST routes and its WebSocket risk channel, one module per group."""
