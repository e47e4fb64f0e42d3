from __future__ import annotations

from collections import namedtuple

import numpy as np
import optree
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.pytree import flat_treedef, flatten, flatten_args, leaf_path, unflatten
from runtime.signature import signature_key


def _same(a: object, b: object) -> bool:
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    if isinstance(a, dict):
        return type(b) is dict and list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    return type(a) is type(b) and a == b


def test_flatten_roundtrips_nested_containers():
    x = np.arange(6.0).reshape(2, 3)
    tree = {"w": [x, (1.5, np.float32(2.0))], "b": None, "n": 3, "s": "relu", "o": {"k": []}}
    leaves, treedef = flatten(tree)
    assert len(leaves) == 5
    assert leaves[0] == 3 and leaves[2] is x  # keys sorted: b (empty), n, o (empty), s, w
    assert _same(unflatten(treedef, leaves), tree)


def test_flatten_treats_none_as_empty_node():
    leaves, treedef = flatten([None, 1.0, (None,)])
    assert leaves == [1.0]
    assert unflatten(treedef, [2.0]) == [None, 2.0, (None,)]


def test_flatten_sorts_dict_keys_and_unflatten_keeps_insertion_order():
    leaves, treedef = flatten({"b": 1.0, "a": 2.0})
    assert leaves == [2.0, 1.0]
    assert list(unflatten(treedef, [20.0, 10.0]).items()) == [("b", 10.0), ("a", 20.0)]


def test_flatten_keeps_other_objects_as_leaves():
    obj = object()
    leaves, _ = flatten((obj, np.float64(1.0), 1 + 2j))
    assert leaves[0] is obj and len(leaves) == 3


def test_flatten_args_matches_optree_on_leaf_arguments():
    a = np.ones(3)
    args = (a, 2.0, 3, np.float32(1.0), True)
    leaves, treedef = flatten_args(args)
    ref_leaves, ref_treedef = optree.tree_flatten(args, none_is_leaf=False)
    assert leaves == ref_leaves and leaves[0] is a
    assert treedef == ref_treedef
    assert treedef is flat_treedef(5)  # one shared object per arity
    assert flatten_args((1.0, 2.0, 3.0, 4.0, 5.0))[1] is treedef


def test_flatten_args_falls_back_for_containers():
    point = namedtuple("point", "x y")
    for args in [(None, 1.0), ([1.0, 2.0], 3.0), (point(1.0, 2.0),), ({"a": 1.0},)]:
        leaves, treedef = flatten_args(args)
        ref_leaves, ref_treedef = optree.tree_flatten(args, none_is_leaf=False)
        assert leaves == ref_leaves and treedef == ref_treedef
        assert unflatten(treedef, leaves) == args


def test_leaf_path_names_nested_leaf():
    _, treedef = flatten((1.0, {"w": [np.ones(2), 2.0]}))
    assert leaf_path(treedef, 2, "args") == "args[1]['w'][1]"
    assert leaf_path(treedef, 0) == "[0]"


_leaf = st.one_of(
    st.floats(allow_nan=False),
    st.integers(),
    st.booleans(),
    st.text(max_size=3),
    st.builds(np.array, st.lists(st.floats(allow_nan=False), max_size=3)),
)
_trees = st.recursive(
    st.one_of(_leaf, st.none()),
    lambda kids: st.one_of(
        st.lists(kids, max_size=3),
        st.lists(kids, max_size=3).map(tuple),
        st.dictionaries(st.text(max_size=2), kids, max_size=3),
    ),
    max_leaves=12,
)


@settings(deadline=None, max_examples=200)
@given(_trees)
def test_flatten_roundtrips_random_trees(tree):
    leaves, treedef = flatten(tree)
    assert treedef.num_leaves == len(leaves)
    assert _same(unflatten(treedef, leaves), tree)
    if isinstance(tree, tuple):
        args_leaves, args_treedef = flatten_args(tree)
        assert args_treedef == treedef and len(args_leaves) == len(leaves)


def test_flatten_args_dicts_of_leaves_match_optree_and_share_a_head():
    a, b = np.ones(2), np.zeros(3)
    for args in [
        ({"w": a, "b": b}, 1.0),
        ({"b": b, "w": a}, 1.0),
        ({"w": a, 1: b},),
        ({"w": [a]},),
    ]:
        leaves, treedef = flatten_args(args)
        ref_leaves, ref_treedef = optree.tree_flatten(args, none_is_leaf=False)
        assert len(leaves) == len(ref_leaves) and all(x is y for x, y in zip(leaves, ref_leaves))
        assert treedef == ref_treedef
    # insertion order is not structure: both orders make one signature, as their treedefs do
    k1 = signature_key(*flatten_args(({"w": a, "b": b}, 1.0)))
    k2 = signature_key(*flatten_args(({"b": b, "w": a}, 1.0)))
    assert k1 == k2 and hash(k1) == hash(k2)
    assert k1 != signature_key(*flatten_args(({"w": a, "c": b}, 1.0)))
