"""Tests that run every script in examples/."""
