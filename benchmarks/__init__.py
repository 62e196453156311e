"""Benchmarks: medians and ratios against raw redis-py and the peer libraries."""
