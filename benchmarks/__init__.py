"""Runnable benchmarks that print ratios against peers measured in the same run (not tests).

Run all of them with `python -m benchmarks`, or one with `python -m benchmarks.bench_<name>`.
`benchmarks.common` is the shared harness: data, servers, load generators, the ratio table.
"""
