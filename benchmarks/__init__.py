"""trioclient's benchmark suite: peers and bare floors against nginx on loopback.

Run it from the repository root with ``python -m benchmarks.run``; see benchmarks/README.md.
"""
