"""Benchmarks of the settlement engine (see README.md)."""
