"""Benchmarks: each ``bench_*.py`` has a ``main()`` printing ratios against baselines it measures."""
