"""Benchmarks (not part of CI): `python -m bench --quick` or `python -m bench`."""
