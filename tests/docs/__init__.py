"""Checks of the project's Markdown."""
