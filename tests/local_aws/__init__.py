"""Tests of the local AWS (local_aws/): one per gap in its gaps.py."""
