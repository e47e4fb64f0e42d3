"""Generated code follows the buffer plan: intermediates live in the arena's planned slots.

Steady calls allocate no new intermediate buffers, outputs never alias each other, an input or
arena memory, concurrent callers get their own buffer sets, an exception gives the set back,
and gradients match the interpreter under every memory policy.
"""

from __future__ import annotations

import itertools
import re
import threading
import tracemalloc

import numpy as np
import pytest

from compiler import checkpoint, value_and_grad
from compiler.codegen import driver as drv
from compiler.codegen.pushdown import push_down
from compiler.codegen.schedule import sink
from compiler.interpret import run_graph
from compiler.ir import Builder, TensorType
from compiler.passes.fuse import fuse
from compiler.pipeline import lower_graph
from compiler.plan import assign_buffers
from runtime.arena import Arena
from tests.codegen.graphs import deep_args, deep_joint, deep_loss, logreg_shape_graph
from tests.codegen.util import assert_same, cache_dir  # noqa: F401  (fixture)

# 64 x 64 = 4096 elements per layer value: loops run as kernels from the first call
DEPTH, WIDTH, BATCH = 3, 64, 64


@pytest.fixture(scope="module")
def deep():
    g, flat = deep_joint(DEPTH, WIDTH, BATCH)
    fn = lower_graph(g, stage="test")
    return g, flat, fn


def _nbytes(outs) -> int:
    return sum(np.asarray(o).nbytes for o in outs)


def test_memory_arena_holds_the_planned_slots(deep):
    _, _, fn = deep
    bufs = fn.buffers
    again = assign_buffers(fn.graph)  # the plan of exactly the graph the driver runs
    assert bufs.slot_of == again.slot_of and bufs.peak_bytes == again.peak_bytes
    assert fn.arena is not None and fn.arena.nbytes == bufs.peak_bytes > 0
    assert list(fn.arena.arena.specs) == [(tuple(s), np.dtype(d)) for s, d in bufs.arena_specs()]
    # the driver writes intermediates into views of the set, never np.empty for them
    fresh = sum(s.fresh for s in bufs.slots)
    assert fn.source.count("np.empty(") <= fresh
    assert "A.release(B)" in fn.source


def test_memory_steady_calls_allocate_no_new_intermediates(deep, monkeypatch):
    _, flat, fn = deep
    fn(*flat)
    sets = fn.arena.num_sets
    calls = []
    real = np.empty

    def counting(*a, **k):
        calls.append(a)
        return real(*a, **k)

    monkeypatch.setattr(np, "empty", counting)
    outs = fn(*flat)
    monkeypatch.undo()
    # one np.empty per output buffer (gradients and value), none for intermediates
    assert len(calls) <= len(outs)
    assert fn.arena.num_sets == sets == 1
    # and all that a steady call allocates is its outputs (plus small Python objects)
    tracemalloc.start()
    try:
        fn(*flat)
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        outs = fn(*flat)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert peak <= _nbytes(outs) + 16 * 1024
    assert fn.buffers.peak_bytes > 4 * _nbytes(outs[:1])  # the arena is not what we saw


def test_memory_kernels_allocate_nothing(deep):
    # what makes tracemalloc + the arena an honest measure: no allocation inside njit code
    _, flat, fn = deep
    fn(*flat)
    names = set(re.findall(r"def (k_\w+)\(", fn.source))
    checked = 0
    for name in names:
        disp = getattr(fn.module, name)
        if disp.targetoptions.get("parallel") or not disp.overloads:
            continue  # parallel twins allocate their schedule; not compiled at these sizes
        for ir in disp.inspect_llvm().values():
            assert "NRT_MemInfo_alloc" not in ir and "NRT_Allocate" not in ir, name
        checked += 1
    assert checked >= 2


def test_memory_outputs_never_alias_each_other_inputs_or_the_arena(deep):
    g, flat, fn = deep
    first = fn(*flat)
    kept = [np.array(o, copy=True) for o in first]
    other = [a * 0.5 + 0.1 for a in flat]
    second = fn(*other)
    for a, b in zip(first, kept):  # the second call did not write into the first's results
        np.testing.assert_array_equal(a, b)
    arrays = [o for o in first + second if isinstance(o, np.ndarray) and o.size]
    arena = [b for bs in fn.arena._views.values() for b in bs[1]]
    for a, b in itertools.combinations(arrays, 2):
        assert not np.shares_memory(a, b)
    for a in arrays:
        assert not any(np.shares_memory(a, b) for b in arena)
        assert not any(np.shares_memory(a, x) for x in flat + other)
    for a, e in zip(second, run_graph(g, other)):
        assert_same(a, e)


def test_memory_concurrent_callers_get_their_own_buffers(deep):
    g, flat, fn = deep
    inputs = [[a * (1 + 0.1 * k) for a in flat] for k in range(6)]
    want = [run_graph(g, x) for x in inputs]
    errors: list[BaseException] = []
    barrier = threading.Barrier(6)

    def work(k: int) -> None:
        try:
            barrier.wait()
            for _ in range(15):
                for a, e in zip(fn(*inputs[k]), want[k]):
                    assert_same(a, e)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    assert 1 <= fn.arena.num_sets <= 6
    assert not any(s.in_use for s in fn.arena.arena._free)


def test_memory_an_exception_gives_the_buffer_set_back():
    b = Builder()
    x = b.add_input(TensorType((64, 80), np.float64))
    i = b.add_input(TensorType((3,), np.int64))
    y = b.add("multiply", [x, x])
    t = b.add("take", [y, i], {"axis": 0})
    g = b.build([b.add("sum", [b.add("add", [t, t])], {"axis": (0,), "keepdims": False})])
    fn = lower_graph(g)
    xv = np.ones((64, 80))
    np.testing.assert_allclose(fn(xv, np.array([0, 1, 2]))[0], np.full(80, 6.0))
    assert fn.arena is not None
    with pytest.raises(IndexError):
        fn(xv, np.array([0, 99, 1]))  # the take kernel raises mid-call
    assert fn.arena.num_sets == 1
    assert len(fn.arena.arena._free) == 1  # released by the driver's finally
    np.testing.assert_allclose(fn(xv, np.array([1, 1, 1]))[0], np.full(80, 6.0))
    assert fn.arena.num_sets == 1


def test_memory_new_batch_size_new_arena_same_module():
    g4, flat4 = deep_joint(2, 6, 4)
    g9, flat9 = deep_joint(2, 6, 9)
    a, b = lower_graph(g4), lower_graph(g9)
    assert a.module is b.module and a.arena is not b.arena
    assert a.arena.nbytes < b.arena.nbytes
    for fn, g, flat in ((a, g4, flat4), (b, g9, flat9)):
        for x, e in zip(fn(*flat), run_graph(g, flat)):
            assert_same(x, e)


def test_memory_small_loops_run_as_numpy_until_hot():
    b = Builder()
    x = b.add_input(TensorType((3, 5), np.float32))  # 15 elements: under SMALL_LOOP
    y = b.add_input(TensorType((5,), np.float32))
    e = b.add("subtract", [b.add("multiply", [x, b.add("cos", [x])]), b.add("minimum", [y, x])])
    g = fuse(b.build([b.add("max", [b.add("abs", [e])], {"axis": (1,), "keepdims": True}), e]))
    rng = np.random.default_rng(3)
    flat = [rng.normal(size=(3, 5)).astype(np.float32), rng.normal(size=5).astype(np.float32)]
    fn = lower_graph(g)
    want = run_graph(g, flat)
    names = set(re.findall(r"def (k_\w+)\(", fn.source))
    compiled = {n for n in names if getattr(fn.module, n).overloads}
    for x, e in zip(fn(*flat), want):
        assert_same(x, e)
    assert "if calls > P[" in fn.source
    # nothing new compiled on the first call
    assert {n for n in names if getattr(fn.module, n).overloads} == compiled
    counter = getattr(fn, "first", fn).args[0][1]  # the Python driver's (njit_driver.tiers)
    counter[0] = 10**9  # every small loop is past its threshold: its kernel runs
    for x, e in zip(fn(*flat), want):
        assert_same(x, e)
    assert any(getattr(fn.module, n).overloads for n in names - compiled)
    # a later stage with the same kernels (a new batch size) uses them from the first call
    g5, flat5 = deep_joint(2, 6, 5)
    fn5 = lower_graph(g5)
    params5 = getattr(fn5, "first", fn5).args[0]  # the Python driver's (njit_driver.tiers)
    sites = [j for j, v in enumerate(params5) if isinstance(v, int) and v == 0]
    assert sites
    for x, e in zip(fn5(*flat5), run_graph(g5, flat5)):
        assert_same(x, e)


def test_memory_small_loop_switch_rents_then_buys():
    assert drv.hot_after(4, 1) > 10_000  # a loss head: NumPy calls for a long time
    assert drv.hot_after(4, 64) < 1_000  # a kernel shared by 64 layers: soon
    assert drv.hot_after(1000, 1000) == 1


def _ref(loss, args, memory):
    return value_and_grad(loss, memory=memory, backend="interpret")(*args)


def _flat(tree):
    import optree

    return optree.tree_leaves(tree)


@pytest.mark.parametrize("memory", [None, "sqrt"])
def test_memory_gradients_match_the_interpreter_under_each_policy(memory):
    args, _ = deep_args(12, 64, 64)
    got = value_and_grad(deep_loss, memory=memory)(*args)
    want = _ref(deep_loss, args, None)
    for a, e in zip(_flat(got), _flat(want)):
        assert_same(np.asarray(a), np.asarray(e))


def test_memory_gradients_match_the_interpreter_with_checkpoints():
    def layer(h, w, b):
        return h + np.tanh(h @ w + b)

    block = checkpoint(layer)

    def loss(params, x, target):
        h = x
        for k, (w, b) in enumerate(params):
            h = (block if k % 2 else layer)(h, w, b)
        return np.mean((h - target) ** 2)

    args, _ = deep_args(6, 64, 64)
    fn = value_and_grad(loss)
    got = fn(*args)
    for a, e in zip(_flat(got), _flat(_ref(loss, args, None))):
        assert_same(np.asarray(a), np.asarray(e))
    plain = value_and_grad(deep_loss)
    plain(*args)
    spec = next(iter(fn._cache.values()))
    base = next(iter(plain._cache.values()))
    # the checkpointed segments store less; the compiled stage's arena shows it
    assert spec.fn.buffers.peak_bytes < base.fn.buffers.peak_bytes


def test_memory_sqrt_policy_shrinks_the_arena():
    args, _ = deep_args(16, 64, 64)
    fns = {m: value_and_grad(deep_loss, memory=m) for m in (None, "sqrt")}
    for f in fns.values():
        f(*args)
    arena = {m: next(iter(f._cache.values())).fn.arena.nbytes for m, f in fns.items()}
    # at depth 16 the tail of two segments that sqrt keeps unrecomputed is 6 of the 16 layers
    assert arena["sqrt"] <= 0.6 * arena[None]


def test_memory_sink_moves_backward_only_values_next_to_their_reader():
    # t = tanh(x @ w); d = 1 - t*t is computed right after t but read only after the
    # matmuls (and t itself lives to the end, for the weight gradient t.T @ g)
    b = Builder()
    x = b.add_input(TensorType((8, 8), np.float64))
    w = b.add_input(TensorType((8, 8), np.float64))
    t = b.add("tanh", [b.add("matmul", [x, w])])
    d = b.add("subtract", [b.const(np.float64(1.0)), b.add("square", [t])])
    m = b.add("matmul", [t, w])
    m3 = b.add("matmul", [b.add("matmul", [m, w]), w])
    g1 = b.add("multiply", [m3, d])
    g = b.build([b.add("matmul", [b.add("transpose", [t], {"axes": (1, 0)}), g1])])
    s = sink(g)
    ops = [n.op for n in s.nodes]
    matmuls = [i for i, op in enumerate(ops) if op == "matmul"]
    assert ops.index("square") > matmuls[3]  # after m3, the last matmul before its reader
    assert assign_buffers(s).peak_bytes < assign_buffers(g).peak_bytes
    args = [np.random.default_rng(0).normal(size=(8, 8)) for _ in range(2)]
    for a, e in zip(run_graph(s, args), run_graph(g, args)):
        assert_same(a, e)


def test_memory_pushdown_recomputes_a_cheap_output_in_its_reader():
    g = logreg_shape_graph(4096)
    fz = fuse(g, barrier=lambda n: n.op == "exp")
    pushed = push_down(fz)
    widths = [len(n.outputs) for n in pushed.nodes if n.op == "fused"]
    assert max(len(n.outputs) for n in fz.nodes if n.op == "fused") == 3 and max(widths) == 2
    rng = np.random.default_rng(1)
    args = [rng.normal(size=4096), np.array([0.3]), rng.normal(size=4096)]
    want = run_graph(g, args)
    for a, e_ in zip(run_graph(pushed, args), want):
        assert_same(a, e_)
    fn = lower_graph(fz)
    for a, e_ in zip(fn(*args), want):
        assert_same(a, e_)
    assert fn.buffers.peak_bytes <= assign_buffers(pushed).peak_bytes


def test_memory_arena_specs_match_runtime_arena():
    g, _ = deep_joint(2, 6, 4)
    bufs = assign_buffers(g)
    arena = Arena(bufs.arena_specs())
    assert arena.nbytes == bufs.peak_bytes
