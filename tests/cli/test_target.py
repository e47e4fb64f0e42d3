"""Reading `--arg` specs, `--argnums` and FILE.py:FUNC."""

from __future__ import annotations

import numpy as np
import pytest

from compiler.cli.target import UsageError, parse_argnums, parse_spec, resolve


def test_parse_spec_kinds():
    rng = np.random.default_rng(0)
    a = parse_spec("f32[3,4]", rng)
    assert a.shape == (3, 4) and a.dtype == np.float32
    assert parse_spec("f64[]", rng).shape == ()
    assert np.all(parse_spec("f64[50]:pos", rng) > 0)
    ints = parse_spec("i64[100]:7", rng)
    assert ints.dtype == np.int64 and ints.min() >= 0 and ints.max() < 7
    assert parse_spec("bool[4]", rng).dtype == np.bool_
    assert parse_spec("2.5", rng) == 2.5 and type(parse_spec("2.5", rng)) is float
    assert parse_spec("3", rng) == 3 and type(parse_spec("3", rng)) is int
    assert parse_spec("true", rng) is True and parse_spec("str:relu", rng) == "relu"
    with pytest.raises(UsageError):
        parse_spec("f64(3)", rng)
    with pytest.raises(UsageError):
        parse_spec("f64[3]:neg", rng)


def test_parse_argnums_by_position_and_name():
    names = ["W", "b", "x"]
    assert parse_argnums("0,1", names) == (0, 1)
    assert parse_argnums("W,x", names) == (0, 2)
    assert parse_argnums("-1", names) == (2,)
    assert parse_argnums(None, names) is None
    with pytest.raises(UsageError):
        parse_argnums("5", names)


def test_resolve_defaults_differentiate_float_arguments(tmp_path):
    (tmp_path / "m.py").write_text("def f(W, x, n, scale=2.0):\n    return (W * x).sum()\n")
    t = resolve(f"{tmp_path}/m.py:f", None, ["W=f64[3]", "x=f64[3]", "n=4"], None)
    assert t.names == ["W", "x", "n", "scale"]
    assert t.argnums == (0, 1, 3) and t.args[2] == 4 and t.args[3] == 2.0


def test_resolve_example_overrides_and_errors():
    t = resolve(None, "mlp", ["x=f64[7,32]", "y=f64[7,10]"], None)
    assert t.args[4].shape == (7, 32) and t.argnums == (0, 1, 2, 3)
    with pytest.raises(UsageError, match="no parameter"):
        resolve(None, "mlp", ["nope=f64[3]"], None)
    with pytest.raises(UsageError, match="either"):
        resolve(None, None, [], None)
