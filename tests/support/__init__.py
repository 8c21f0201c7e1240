"""Test support: frame builders and capture writers (not shipped with the package)."""
