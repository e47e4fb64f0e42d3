"""gradc tests."""
