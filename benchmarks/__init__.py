"""asv benchmarks for numconv (``asv run``; see the README's "Benchmarks" section)."""
