"""Benchmarks behind `holevision bench ...`: they print a table and write JSON; never pass/fail."""
