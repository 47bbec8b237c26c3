"""Talking to registries with the OCI distribution API (v2)."""
