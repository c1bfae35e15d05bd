"""One script per client; each runs one workload in a fresh process and prints one JSON line.

See :mod:`benchmarks.clients._common` for the protocol between a script and the runner.
"""
