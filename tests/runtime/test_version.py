"""runtime/version.py: distribution versions read without importlib.metadata's parser, and the
source-tree stats the build id digests."""

from __future__ import annotations

import os
from importlib.metadata import version

import pytest

from runtime import version as v


@pytest.mark.parametrize("name", ["numpy", "numba", "llvmlite", "pytest"])
def test_dist_version_matches_importlib_metadata(name):
    v.dist_version.cache_clear()
    assert v.dist_version(name) == version(name)


def test_dist_version_of_an_absent_distribution_is_none():
    assert v.dist_version("gradc-no-such-distribution") is None


def test_sources_walks_packages_and_skips_bytecode(tmp_path):
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "pkg" / "__pycache__").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("x = 1\n")
    (tmp_path / "pkg" / "sub" / "b.py").write_text("y = 22\n")
    (tmp_path / "pkg" / "__pycache__" / "c.py").write_text("")
    (tmp_path / "pkg" / "notes.txt").write_text("")
    found = sorted(v._sources(str(tmp_path), "pkg"))
    st = os.stat(tmp_path / "pkg" / "sub" / "b.py")
    assert [f[0] for f in found] == ["pkg/a.py", "pkg/sub/b.py"]
    assert found[1][1:] == (st.st_size, st.st_mtime_ns)


def test_build_id_covers_every_gradc_source():
    top = os.path.dirname(os.path.dirname(os.path.abspath(v.__file__)))
    want = {
        os.path.relpath(os.path.join(d, f), top)
        for pkg in ("compiler", "runtime")
        for d, _, files in os.walk(os.path.join(top, pkg))
        if "__pycache__" not in d
        for f in files
        if f.endswith(".py")
    }
    got = {f[0] for pkg in ("compiler", "runtime") for f in v._sources(top, pkg)}
    assert got == want
