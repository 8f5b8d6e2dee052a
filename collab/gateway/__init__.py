"""The aiohttp edge: WebSocket and HTTP endpoints that translate to actor messages and back."""
