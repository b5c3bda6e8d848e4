"""Benchmarks against raw baselines measured in the same run; figures in bench/RESULTS.md."""
