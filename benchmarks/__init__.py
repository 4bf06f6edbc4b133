"""Runnable benchmarks that print ratios against peers measured in the same run (not tests).

Run all of them with `python -m benchmarks`, or one with `python -m benchmarks.bench_<name>`.
The harness, by concern: `settings` (paths and cores, from the environment), `data` (generated
once, reused), `processes` (server processes, shared with the tests), `servers` (ours and the
peers, pinned), `peers` (the peer processes), `load` (wrk, curl, timed clients), `report`
(the ratio table).
"""
