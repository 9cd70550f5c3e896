"""Transforms contributed for particular deployments."""
