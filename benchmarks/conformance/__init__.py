"""The cancellation contract measured on trioclient and its peers (httpx on Trio and on
asyncio, aiohttp): ``python -m benchmarks.conformance``; see benchmarks/README.md."""
