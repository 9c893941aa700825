"""Fences around third-party private APIs: one module per library, each pinned by a test."""
