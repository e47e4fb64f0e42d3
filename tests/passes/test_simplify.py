"""One test per simplify rule: the rule fires, the graph verifies, and values are unchanged."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from compiler import trace
from compiler.autodiff import vjp_graph
from compiler.interpret import run_graph
from compiler.ir import Builder, Graph, TensorType, verify
from compiler.passes.dce import dce
from compiler.passes.simplify import RULES, simplify
from tests.passes.cases import assert_same_outputs

F64 = np.dtype("float64")


def traced(fn: Callable, *shapes: tuple[int, ...]) -> Callable[[], Graph]:
    """A graph factory: `fn` traced at float64 arrays of `shapes`."""
    return lambda: trace(fn, *[np.ones(s) for s in shapes]).with_meta(in_tree=None)


def built(fn: Callable, *shapes: tuple[int, ...]) -> Callable[[], Graph]:
    """A graph factory: `fn(b, *inputs)` returns the outputs, built with a Builder."""

    def make() -> Graph:
        b = Builder()
        xs = [b.add_input(TensorType(s, F64)) for s in shapes]
        out = fn(b, *xs)
        return b.build(out if isinstance(out, list) else [out])

    return make


def zeros(b: Builder, shape, dtype=F64):
    return b.add("full", [], {"shape": shape, "dtype": np.dtype(dtype), "fill": 0.0})


def ops_of(g: Graph) -> list[str]:
    return [n.op for n in g.nodes]


def only(*ops: str) -> Callable[[list[str]], bool]:
    return lambda got: sorted(got) == sorted(ops)


def lacks(*ops: str) -> Callable[[list[str]], bool]:
    return lambda got: not set(ops) & set(got)


def _zero_set(x):
    z = np.zeros_like(x)
    z[0:1] = 0.0  # a set_slice of zeros into zeros
    return z


# (rule, id, graph factory, check on the ops left after simplify + dce)
RULE_CASES = [
    (
        "fold_uniform",
        "ones*3",
        traced(lambda x: x + np.ones_like(x) * 3.0, (2, 3)),
        only("full", "add"),
    ),
    ("mul_one", "x*1", traced(lambda x: x * 1.0, (3,)), only()),
    ("mul_one", "1*x", traced(lambda x: np.ones_like(x) * x, (3,)), only()),
    (
        "mul_one",
        "x*ones broadcasts",
        traced(lambda x: x * np.ones((2, 3)), (3,)),
        only("broadcast_to"),
    ),
    ("mul_minus_one", "x*-1", traced(lambda x: x * -1.0, (3,)), only("negative")),
    ("mul_zero", "x*0", traced(lambda x: x * np.zeros_like(x), (3,)), only("full")),
    ("mul_zero", "0*x", traced(lambda x: np.zeros((2, 2)) * x, (2, 2)), only("full")),
    # a literal 0.0 is a const, not an adjoint zero: NumPy's 0 * inf = nan must survive
    ("mul_zero", "0.0*x kept", traced(lambda x: 0.0 * x, (2, 2)), only("const", "multiply")),
    ("mul_neg_neg", "(-x)*(-y)", traced(lambda x, y: (-x) * (-y), (3,), (3,)), only("multiply")),
    ("mul_self", "x*x", traced(lambda x: x * x, (3,)), only("square")),
    ("add_zero", "x+0", traced(lambda x: x + np.zeros_like(x), (3,)), only()),
    ("add_zero", "0+x", traced(lambda x: 0.0 + x, (3,)), only()),
    ("add_neg", "x+(-y)", traced(lambda x, y: x + (-y), (3,), (3,)), only("subtract")),
    ("add_neg", "(-x)+y", traced(lambda x, y: (-x) + y, (3,), (3,)), only("subtract")),
    ("sub_zero", "x-0", traced(lambda x: x - 0.0, (3,)), only()),
    ("sub_zero", "0-x", traced(lambda x: 0.0 - x, (3,)), only("negative")),
    ("sub_neg", "x-(-y)", traced(lambda x, y: x - (-y), (3,), (3,)), only("add")),
    ("div_one", "x/1", traced(lambda x: x / 1.0, (3,)), only()),
    ("div_one", "x/-1", traced(lambda x: x / -1.0, (3,)), only("negative")),
    ("pow_small", "x**0", traced(lambda x: x**0.0, (3,)), only("full")),
    ("pow_small", "x**1", traced(lambda x: x**1.0, (3,)), only()),
    ("pow_small", "x**2", traced(lambda x: np.power(x, 2.0), (3,)), only("square")),
    ("neg_neg", "-(-x)", traced(lambda x: np.negative(-x), (3,)), only()),
    ("square_neg", "square(-x)", traced(lambda x: np.square(-x), (3,)), only("square")),
    ("log_exp", "log(exp x)", traced(lambda x: np.log(np.exp(x)), (3,)), only()),
    ("where_same", "where(c,y,y)", traced(lambda x, y: np.where(x > 0, y, y), (3,), (3,)), only()),
    (
        "where_same",
        "where(c,0,0)",
        traced(lambda x: np.where(x > 0, np.zeros_like(x), 0.0), (3,)),
        only("full"),
    ),
    (
        "where_const_cond",
        "where(True,x,y)",
        traced(lambda x, y: np.where(True, x, y), (3,), (3,)),
        only(),
    ),
    (
        "where_const_cond",
        "where(False,x,y) broadcasts",
        traced(lambda x, y: np.where(np.zeros((2, 3), bool), x, y), (3,), (3,)),
        only("broadcast_to"),
    ),
    (
        "astype_same",
        "astype f64->f64",
        built(lambda b, x: b.add("astype", [x], {"dtype": F64}), (3,)),
        only(),
    ),
    (
        "move_fill",
        "reshape/transpose/slice/take of zeros",
        traced(
            lambda x: (
                x
                + np.broadcast_to(
                    np.zeros_like(x).T[:, 1:].reshape(4)[np.array([0, 1, 2, 3])].reshape(2, 2)[0],
                    (3, 2),
                )
            ),
            (3, 2),
        ),
        only(),
    ),
    (
        "move_fill",
        "max(full)",
        traced(lambda x: x + np.max(np.ones_like(x), axis=0), (2, 2)),
        only("add", "full"),
    ),
    (
        "write_fill",
        "set_slice of zeros",
        traced(lambda x: x + _zero_set(x), (2, 3)),
        only(),
    ),
    (
        "write_fill",
        "concatenate zeros",
        traced(lambda x: np.concatenate([np.zeros_like(x), np.zeros((1, 3))])[:2] + x, (2, 3)),
        only(),
    ),
    (
        "scatter_add_zeros",
        "scatter_add(x, i, 0)",
        built(
            lambda b, x: b.add(
                "scatter_add", [x, b.const(np.array([0, 2])), zeros(b, (2,))], {"axis": 0}
            ),
            (3,),
        ),
        only(),
    ),
    (
        "sum_fill",
        "sum(ones)",
        traced(lambda x: np.sum(np.ones_like(x)) + x, (2, 3)),
        only("const", "add"),
    ),
    ("matmul_zero", "0@x", traced(lambda x: np.zeros((2, 3)) @ x, (3, 4)), only("full")),
    ("matmul_zero", "x@0", traced(lambda x: x @ np.zeros((3, 4)), (2, 3)), only("full")),
    (
        "reshape_chain",
        "reshape(reshape) identity",
        traced(lambda x: x.reshape(6).reshape(2, 3), (2, 3)),
        only(),
    ),
    (
        "reshape_chain",
        "reshape(reshape)",
        traced(lambda x: x.reshape(6).reshape(3, 2), (2, 3)),
        only("reshape"),
    ),
    (
        "reshape_of_sum",
        "reshape(sum) -> keepdims",
        traced(lambda x: np.sum(x, axis=1).reshape(2, 1), (2, 3)),
        only("sum"),
    ),
    ("transpose_chain", "x.T.T", traced(lambda x: x.T.T, (2, 3)), only()),
    (
        "transpose_chain",
        "composed",
        traced(lambda x: x.transpose(1, 2, 0).transpose(0, 2, 1), (2, 3, 4)),
        only("transpose"),
    ),
    (
        "transpose_chain",
        "identity axes",
        built(lambda b, x: b.add("transpose", [x], {"axes": (0, 1)}), (2, 3)),
        only(),
    ),
    (
        "broadcast_chain",
        "bcast(bcast)",
        traced(lambda x: np.broadcast_to(np.broadcast_to(x, (2, 3)), (4, 2, 3)), (3,)),
        only("broadcast_to"),
    ),
    (
        "broadcast_chain",
        "bcast(reshape with leading 1s)",
        traced(lambda x: np.broadcast_to(x.reshape(1, 3), (2, 3)), (3,)),
        only("broadcast_to"),
    ),
    (
        "broadcast_chain",
        "bcast to same shape",
        built(lambda b, x: b.add("broadcast_to", [x], {"shape": (3,)}), (3,)),
        only(),
    ),
    ("reduce_nothing", "sum over ()", traced(lambda x: np.sum(x, axis=()), (2, 3)), only()),
    (
        "sum_broadcast",
        "sum(bcast) -> n*x",
        traced(lambda x: np.sum(np.broadcast_to(x, (4, 3)), axis=0), (3,)),
        only("multiply", "const"),
    ),
    (
        "sum_broadcast",
        "keepdims",
        traced(lambda x: np.sum(np.broadcast_to(x, (2, 4, 3)), axis=(0, 2), keepdims=True), (4, 1)),
        only("multiply", "const", "reshape"),
    ),
    (
        "sum_broadcast",
        "other axes stay broadcast",
        traced(lambda x: np.sum(np.broadcast_to(x, (2, 4, 3)), axis=0), (4, 1)),
        only("multiply", "const", "broadcast_to"),
    ),
    (
        "sum_broadcast",
        "not a broadcast axis",
        traced(lambda x: np.sum(np.broadcast_to(x, (2, 4, 3)), axis=1), (4, 1)),
        only("broadcast_to", "sum"),
    ),
    (
        "absorb_broadcast",
        "binary",
        traced(lambda x, b: x + np.broadcast_to(b, (4, 3)), (4, 3), (3,)),
        only("add"),
    ),
    (
        "absorb_broadcast",
        "reshape adding leading 1s",
        traced(lambda x, b: x * b.reshape(1, 3), (4, 3), (3,)),
        only("multiply"),
    ),
    (
        "absorb_broadcast",
        "unary",
        traced(lambda b: np.tanh(np.broadcast_to(b, (4, 3))), (3,)),
        only("tanh", "broadcast_to"),
    ),
]


@pytest.mark.parametrize(
    ("rule", "make", "check"),
    [c[0:1] + c[2:] for c in RULE_CASES],
    ids=[f"{c[0]}:{c[1]}" for c in RULE_CASES],
)
def test_simplify_rule(rule, make, check):
    g = make()
    out = dce(verify(simplify(g)))
    verify(out)
    assert check(ops_of(out)), f"{rule}: left {ops_of(out)}\n{out}"
    rng = np.random.default_rng(0)
    args = [rng.normal(size=v.shape) for v in g.inputs]
    assert_same_outputs(g, out, args)


def test_simplify_every_rule_is_tested_and_documented():
    tested = {c[0] for c in RULE_CASES}
    rules = {r for rs in RULES.values() for r in rs}
    assert {r.__name__ for r in rules} == tested
    for r in rules:
        assert r.__doc__ and "->" in r.__doc__, f"{r.__name__} states no formula"


def test_simplify_keeps_exp_of_log():
    # exp(log x) is NaN for x < 0, so folding it to x would invent values
    g = trace(lambda x: np.exp(np.log(x)), np.ones(3))
    assert simplify(g) is g


def test_simplify_keeps_zero_divided_by_x():
    # 0 / x is NaN at x = 0, which is finite: not a zero that IEEE guarantees
    g = trace(lambda x: np.zeros_like(x) / x, np.ones(3))
    assert "divide" in ops_of(dce(simplify(g)))


def test_simplify_multiplication_by_zero_assumes_finite_operands():
    # The documented choice: a fill of zeros times x is zero even where x is Inf (IEEE: NaN),
    # as for JAX's symbolic zero cotangents.
    g = trace(lambda x: np.exp(x) * np.zeros_like(x), np.ones(2))
    out = dce(simplify(g))
    x = np.array([1.0, 1000.0])  # exp overflows to Inf
    assert np.isnan(run_graph(g, [x])[0][1])
    np.testing.assert_array_equal(run_graph(out, [x])[0], [0.0, 0.0])


def test_simplify_collapses_adjoint_seed_chain():
    # the seed of d/dx sum(x): full 1 -> reshape -> broadcast_to becomes one fill
    g = vjp_graph(trace(lambda x: np.sum(x), np.ones((2, 3))), wrt=[0])
    out = dce(simplify(g))
    assert ops_of(out) == ["sum", "full"]
