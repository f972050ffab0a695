"""The benchmark: ``make bench-data`` builds a practice at scale once, ``make bench`` measures.

Everything runs on a private PostgreSQL (``var/bench/pg``) and a private Redis on free
loopback ports, so a benchmark never touches the developer's own databases. See the
Benchmarks section of README.md for what is measured and the figures of a real run.
"""
