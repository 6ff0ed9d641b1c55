"""Tests of what runs in the task: the function in Lambda's runtime, the containers' view of the tree, TLS."""
