"""Tests of the `gradc` command line and the docs generated from the registry."""
