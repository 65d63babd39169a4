"""Benchmarks (run as scripts; importable as a package so tests can reuse their helpers)."""
