"""Offline checks of cfn/: the template model, the checkers that use it, and their runner."""
