"""Helpers shared by the tests, the benchmarks and the CPU demo (no pytest import here)."""
