"""Contractions as user code calls them: values equal NumPy's, gradients equal finite
differences; einsum lowers to transposes, reshapes and batched matmuls (no einsum op)."""

from __future__ import annotations

import numpy as np
import pytest

from compiler import trace
from tests.helpers import check_value_and_grad

R = np.random.default_rng(31)
A, B, C = R.normal(size=(3, 4)), R.normal(size=(4, 5)), R.normal(size=(2, 3, 4))
S, V = R.normal(size=(3, 3)), R.normal(size=(4,))

EINSUM = [
    ("ij,jk->ik", A, B),
    ("ij,jk", A, B),
    ("ii->", S),
    ("ii->i", S),
    ("ij->ji", A),
    ("ij->", A),
    ("bij,jk->bik", C, B),
    ("...ij,jk->...ik", C, B),
    ("...j,j", C, V),
    ("i,i", V, V),
    ("i,j->ij", V, V),
    ("bij,bij->b", C, C),
    ("ijk,ij->k", R.normal(size=(3, 3, 4)), S),
    ("ij,jk,kl->il", A, B, R.normal(size=(5, 2))),
    ("i,ij,j", R.normal(size=3), A, V),
    ("ij,kl->ijkl", A, S),
    ("iij->j", R.normal(size=(3, 3, 2))),
    ("...i,...i->...", R.normal(size=(3, 1, 4)), R.normal(size=(2, 4))),
]


@pytest.mark.parametrize("case", EINSUM, ids=[c[0] for c in EINSUM])
def test_contract_einsum_matches_numpy_and_finite_differences(case):
    sub, *args = case
    check_value_and_grad(lambda *xs: np.einsum(sub, *xs), *args)


def test_contract_einsum_lowers_to_matmul():
    g = trace(lambda a, b, c: np.einsum("ij,jk,kl->il", a, b, c), A, B, R.normal(size=(5, 2)))
    ops = {n.op for n in g.nodes}
    assert "matmul" in ops and not ops - {"matmul", "reshape", "transpose", "broadcast_to"}


@pytest.mark.parametrize(
    "f,args",
    [
        (np.tensordot, (C, R.normal(size=(3, 4, 2)))),
        (lambda a, b: np.tensordot(a, b, axes=([1, 2], [0, 1])), (C, R.normal(size=(3, 4, 2)))),
        (lambda a, b: np.tensordot(a, b, 1), (A, B)),
        (np.inner, (A, A)),
        (np.outer, (V, V)),
        (np.kron, (A, S)),
        (np.vdot, (A, A)),
        (np.dot, (C, B)),
        (lambda a, b: a.dot(b), (C, V)),
        (np.matmul, (C, R.normal(size=(2, 4, 2)))),
    ],
)
def test_contract_functions_match_numpy_and_finite_differences(f, args):
    check_value_and_grad(f, *args)
