"""Tests of compiler.distributed (Dask)."""
