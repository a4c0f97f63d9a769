"""Benchmarks: scripts that print performance tables (see RESULTS.md); never timed tests."""
