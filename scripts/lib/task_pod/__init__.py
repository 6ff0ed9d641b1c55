"""Runs a rendered ECS task definition as a local pod (scripts/run-local.sh); see pod.py."""
