"""Where each elementwise op runs: in a fused Numba loop, or as a NumPy ufunc from the driver.

Numba has no SIMD transcendentals without Intel SVML, so its loops call scalar libm, while
NumPy's ufuncs use AVX2/AVX-512 kernels. Measured on 2**22 elements (AMD EPYC, AVX-512,
numba 0.68, numpy 2.4; one loop of `o[i] = f(a[i])` against `np.f(a, out=o)`):

    op        f64 numba / numpy   ratio      f32 numba / numpy   ratio
    tanh        117 / 8.5 ms       13.9        68 / 0.9 ms        77
    exp          29 / 7.8 ms        3.7        14 / 2.4 ms         5.8
    log          28 / 7.2 ms        3.9       7.8 / 1.3 ms         6.0
    log1p        76 / 8.2 ms        9.3        46 / 2.9 ms        15.7
    expm1        40 / 5.1 ms        8.0        78 / 3.4 ms        23
    power        85 / 14 ms         5.9        32 / 4.9 ms         6.4
    sin          80 / 99 ms         0.8        48 / 8.2 ms         5.8
    cos          68 / 57 ms         1.2        47 / 9.6 ms         4.9
    sqrt        1.9 / 7.3 ms        0.3       1.7 / 2.0 ms         0.8
    logaddexp   149 / 148 ms        1.0       139 / 136 ms        1.0

An extra pass over memory (what splitting a fused loop at a ufunc costs) is ~2 ms for 2**22
float64 (a fused `a*a + a` loop), so every op with ratio >= ~1.5 runs as a ufunc in the
Python driver, and the arithmetic around it stays fused. The all-scalar njit driver keeps
everything in registers (a ufunc call on a scalar would cost a microsecond).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from compiler.ir.graph import Builder, Graph, Node, Value

_UFUNC_BOTH = frozenset({"tanh", "exp", "log", "log1p", "expm1", "power"})
_UFUNC_F32 = frozenset({"sin", "cos"})


def routed(n: Node) -> bool:
    """Whether elementwise node `n` runs as a NumPy ufunc rather than inside a loop kernel."""
    if n.op in _UFUNC_BOTH:
        return True
    return n.op in _UFUNC_F32 and n.out.dtype == np.float32


def inline_fused(graph: Graph, pred: Callable[[Graph], bool]) -> Graph:
    """Replace every fused node whose body satisfies `pred` by the body's nodes."""
    if not any(n.op == "fused" and pred(n.attrs["body"]) for n in graph.nodes):
        return graph
    b = Builder()
    env = {v: b.add_input(v.type) for v in graph.inputs}
    for n in graph.nodes:
        ins = [env[v] for v in n.inputs]
        if n.op == "fused" and pred(n.attrs["body"]):
            outs = _inline(b, inline_fused(n.attrs["body"], pred), ins)
        else:
            outs = b.add_node(n.op, ins, n.attrs, [v.type for v in n.outputs], loc=n.loc)
        env.update(zip(n.outputs, outs))
    return b.build([env[v] for v in graph.outputs], graph.meta)


def _inline(b: Builder, body: Graph, ins: list[Value]) -> list[Value]:
    env = dict(zip(body.inputs, ins))
    for n in body.nodes:
        outs = b.add_node(
            n.op, [env[v] for v in n.inputs], n.attrs, [v.type for v in n.outputs], loc=n.loc
        )
        env.update(zip(n.outputs, outs))
    return [env[v] for v in body.outputs]


def reroute(graph: Graph) -> Graph:
    """The graph codegen compiles: fused groups redone around the routed ops, in an order
    that keeps no value live longer than it must (`schedule.sink`).

    Every fused node is inlined, the flat graph sunk (so a backward-only elementwise value
    that the fuse pass computed in the forward group, like `1 - t*t` after a tanh, moves next
    to its backward reader), then fused again with the routed ops as barriers; fusion then
    merges such a value into the backward loop that reads it, and it is never stored. Bodies
    that are not one loop nest are inlined for op-by-op lowering, cheap group outputs whose
    readers can recompute them are pushed into those readers (`pushdown`), and the result
    is sunk again.
    A graph without fused nodes (fusion disabled) is only sunk.
    """
    from compiler.codegen.loops import fits_loop
    from compiler.codegen.pushdown import push_down
    from compiler.codegen.schedule import sink
    from compiler.passes.fuse import fuse

    flat = inline_fused(graph, lambda body: True)
    if flat is not graph:
        graph = fuse(sink(flat), barrier=routed)
        graph = inline_fused(graph, lambda body: not fits_loop(body))
        graph = push_down(graph)
    return sink(graph)
