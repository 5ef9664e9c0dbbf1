"""Benchmarks of payfallback's core overhead (scripts, not tests; see ``README.md``)."""
