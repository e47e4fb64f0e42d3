from __future__ import annotations

import numpy as np
import pytest

from runtime.pytree import flatten, flatten_args
from runtime.signature import describe_key, normalize_array, signature_key, traced_indices


def key(*args: object, static_mask: tuple[bool, ...] | None = None) -> tuple:
    return signature_key(*flatten_args(args), static_mask)


def test_signature_key_ignores_array_and_float_values():
    a, b = np.zeros((3, 4)), np.ones((3, 4))
    assert key(a, 1.0) == key(b, -7.5)
    assert hash(key(a, 1.0)) == hash(key(b, -7.5))


def test_signature_key_differs_on_shape_dtype_and_structure():
    a = np.zeros((3, 4))
    base = key(a, 1.0)
    assert key(np.zeros((4, 3)), 1.0) != base
    assert key(a.astype(np.float32), 1.0) != base
    assert key(a, 1.0, 2.0) != base
    assert signature_key(*flatten(((a, 1.0),))) != base
    assert signature_key(*flatten(({"x": a, "y": 1.0},))) != signature_key(
        *flatten(({"x": a, "z": 1.0},))
    )


def test_signature_key_keys_static_values_by_type_and_value():
    assert key(1) != key(2)
    assert len({key(1), key(True), key("1"), key(1.0)}) == 4  # 1 == 1.0 == True, keys differ
    assert key(3, "relu") == key(3, "relu")
    assert key((1, 2)) != key(None)  # a tuple argument is a container, None an empty node


def test_signature_key_ignores_memory_layout():
    # The call path hands compiled code contiguous native copies, so layout must not split keys.
    c = np.arange(12.0).reshape(3, 4)
    f = np.asfortranarray(c)
    strided = np.arange(24.0).reshape(3, 8)[:, ::2]
    swapped = c.astype(c.dtype.newbyteorder(">"))
    assert key(c) == key(f) == key(strided) == key(swapped)
    for x in (f, strided, swapped):
        y = normalize_array(x)
        assert y.flags.c_contiguous and y.dtype.isnative and np.array_equal(x, y)
    assert normalize_array(c) is c


def test_signature_key_separates_numpy_scalars_from_0d_arrays():
    assert key(np.float64(2.0)) != key(np.array(2.0))
    assert key(np.float64(2.0)) != key(2.0)
    assert key(np.float64(2.0)) == key(np.float64(3.0))
    assert key(np.float32(2.0)) != key(np.float64(2.0))


def test_signature_key_unhashable_leaf_names_its_path():
    with pytest.raises(TypeError, match=r"args\[1\]\['a'\]\[1\].*set"):
        signature_key(*flatten((1.0, {"a": [np.zeros(2), {1, 2}]})))


def test_signature_key_static_mask_forces_value_keying():
    assert key(1.5, static_mask=(True,)) != key(2.5, static_mask=(True,))
    assert key(1.5, static_mask=(True,)) != key(1.5)
    assert key(np.ones(2), 1.5, static_mask=(False, False)) == key(np.ones(2), 1.5)
    with pytest.raises(TypeError, match=r"args\[0\].*ndarray"):
        key(np.ones(2), static_mask=(True,))
    with pytest.raises(ValueError, match="static_mask"):
        key(1.0, 2.0, static_mask=(True,))


def test_signature_key_same_for_either_flatten():
    args = (np.ones(3), 2.0, 4)
    k_fast = signature_key(*flatten_args(args))
    k_slow = signature_key(*flatten(args))
    assert k_fast == k_slow and hash(k_fast) == hash(k_slow)
    assert k_fast[0] == 3  # flat argument tuples are keyed by arity, not by treedef


def test_traced_indices_lists_arrays_scalars_and_floats():
    k = key(np.ones(2), 3, 1.0, "s", np.float32(1.0))
    assert traced_indices(k) == (0, 2, 4)


def test_describe_key_reads_well():
    k = key(np.ones((3, 4)), np.float32(1.0), 2.0, 3, np.zeros(0, dtype=np.int64))
    assert describe_key(k) == "(f64[3,4], f32 scalar, float, static int=3, i64[0])"
    nested = signature_key(*flatten(({"w": np.ones(2)},)))
    assert describe_key(nested) == "(f64[2]) structured as PyTreeSpec(({'w': *},))"
