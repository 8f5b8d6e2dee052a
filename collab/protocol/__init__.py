"""Wire formats as pure functions over bytes: no sockets, no asyncio, fuzzable."""
