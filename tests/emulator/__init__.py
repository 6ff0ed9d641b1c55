"""Tests of the local AWS (scripts/local/local_aws): one per gap in its gaps.py."""
