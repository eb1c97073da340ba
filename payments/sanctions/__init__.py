"""Sanctions lists: loading the published files into versioned tables (load.py, formats.py) and reading the
current versions for screening (lists.py). docs/compliance.md, "Lists"."""
