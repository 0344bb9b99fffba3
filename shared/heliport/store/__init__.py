"""Ports (what heliport needs from storage) and their adapters: AWS services and local files."""
