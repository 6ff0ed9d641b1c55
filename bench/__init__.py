"""Benchmark of the EFS-tree custom resource against Python ones (scripts/bench.sh runs it)."""
