"""Benchmarks: each ``bench_*.py`` has a ``main()`` that prints ratios against its own baselines."""
