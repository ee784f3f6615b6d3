"""Benchmarks for cors-addon: synthetic traffic, side-by-side timings, budgets."""
