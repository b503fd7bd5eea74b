"""Benchmarks: each ``bench_*.py`` runs alone; ``python -m benchmarks`` runs the side-by-side ones in one table."""
