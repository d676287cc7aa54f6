"""The benchmarks behind `gtw bench <name>`: one module each (turn, fanout, stage, flood, memory,
mission), and common.py with what they share (the throw-away server, percentiles, the
docs/BENCHMARKS.md writer). Not tests: each prints its numbers and, unless --no-write, updates its
section of docs/BENCHMARKS.md. Import the module you need; this package imports nothing."""
