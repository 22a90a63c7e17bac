"""Benchmarks: scripts that measure the harness against baselines on the same machine (docs/performance.md)."""
