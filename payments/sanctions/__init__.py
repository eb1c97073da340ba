"""Sanctions lists: what a listed name is (types), loaded and indexed by the lists work."""
