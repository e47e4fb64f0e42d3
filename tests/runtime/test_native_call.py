"""The native scalar call (runtime/native_call.py, compiler/codegen/llcall.py): the Python
scalar call as machine code in the class's tp_call. Its answers are the general path's (the
same transformation's ordinary `__call__`) and the interpreter's; every call it does not
answer reaches the Python scalar call, with that path's result or error; refcounts stay
exact; it is built off the caller's thread and switched to while other threads call."""

from __future__ import annotations

import math
import sys
import threading
import time
import warnings

import numpy as np
import optree
import pytest

from compiler import grad, jit, value_and_grad
from compiler.api import _Transform
from compiler.codegen.llcall import attach
from compiler.trace.creation import TRACES_ACTIVE
from runtime import background, native_call

P = (2.0, 3.0, 1.0, 4.0)


def seed(params):
    w, x, b, y = params
    return (w * x + b - y) ** 2


def smooth(x, y):
    return np.exp(x) / y + np.log(y) * np.tanh(x) - np.sqrt(y) ** 3


def _same_or_close(got, want, exact=True):
    """The same types all through; floats bit for bit, or (not `exact`) within 1e-13 of the
    larger magnitude (floor 1): libm against NumPy's loops, a fused multiply-add against two
    roundings, and the cancellation in a sum of such terms."""
    if exact:
        assert native_call.same(got, want), (got, want)
        return
    assert type(got) is type(want)
    if isinstance(got, tuple):
        for a, b in zip(got, want, strict=True):
            _same_or_close(a, b, exact)
    else:
        a, b = float(got), float(want)
        close = a == b or abs(a - b) <= 1e-13 * max(1.0, abs(a), abs(b))
        assert (math.isnan(a) and math.isnan(b)) or close, (got, want)


def _manual(f, *args):
    """`f` (compile="never": no Numba stage) called once, then its native call attached now,
    with a counter of the calls that reach the Python scalar call."""
    first = f(*args)
    spec = next(iter(f._cache.values()))
    py, misses = type(f).__call__, []

    def counted(obj, *a, **k):
        misses.append(1)  # not `a` or None: the refcount test watches those
        return py(obj, *a, **k)

    graph = spec.stages.lowered[0].graph
    leaves = optree.tree_leaves(args)
    assert attach(f, counted, graph, args, leaves, spec, f.has_aux, TRACES_ACTIVE, "eager")
    assert "_native" in type(f).__dict__
    misses.clear()  # the install's own check called it once
    return first, misses


@pytest.fixture(scope="module")
def eager_seed():
    f = value_and_grad(seed, compile="eager")
    f(P)
    assert "_native" in type(f).__dict__
    return f


def test_native_seed_equals_general_path_and_interpreter(eager_seed):
    f = eager_seed
    ref = value_and_grad(seed, backend="interpret")
    rng = np.random.default_rng(0)
    cases = [tuple(float(v) for v in rng.standard_normal(4) * 10) for _ in range(50)]
    cases += [(0.0, -0.0, 0.0, -0.0), (-0.0, 1.0, -0.0, 0.0), (1e150, 1e150, 1.0, 0.0)]
    cases += [(1e200, 1e200, 0.0, 0.0), (math.inf, 1.0, 0.0, 0.0), (math.nan, 1.0, 2.0, 3.0)]
    cases += [(5e-324, 1e-310, -0.0, 5e-324)]
    for p in cases:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            got, general, oracle = f(p), _Transform.__call__(f, p), ref(p)
        # bit for bit with the Python scalar call; the compiled general path contracts
        # w*x+b into a fused multiply-add (fastmath 'contract'): within an ulp or two of it
        _same_or_close(got, type(f).__call__(f, p))
        _same_or_close(got, general, exact=False)
        assert type(got[0]) is np.float64 and all(type(g) is float for g in got[1])
        _same_or_close(got, oracle, exact=all(map(math.isfinite, p)))


def test_native_answers_finite_calls_itself_and_misses_the_rest():
    f = value_and_grad(smooth, argnums=(0, 1), compile="never")
    _, misses = _manual(f, 0.3, 2.0)
    rng = np.random.default_rng(1)
    for x, y in zip(rng.uniform(-3, 3, 40), rng.uniform(0.1, 5, 40)):
        got = f(float(x), float(y))
        _same_or_close(got, type(f).__call__(f, float(x), float(y)))  # the Python call
        _same_or_close(got, _Transform.__call__(f, float(x), float(y)), exact=False)
    assert misses == []
    edges = [(1000.0, 2.0), (1.0, 0.0), (1.0, -1.0), (math.nan, 2.0), (math.inf, 2.0)]
    for args in edges:  # overflow, log(0), log(-1), nan, inf: the Python call, then general
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            got, want = f(*args), _Transform.__call__(f, *args)
        _same_or_close(got, want)
    assert len(misses) == len(edges)


SHAPES = [
    (lambda: grad(smooth, argnums=(0, 1), compile="never"), (0.3, 2.0)),
    (lambda: grad(smooth, compile="never"), (0.3, 2.0)),
    (lambda: jit(lambda x, y: x * y - np.tanh(x), compile="never"), (0.3, 2.0)),
    (lambda: grad(lambda ps, s: ps[0] * ps[1] - s * ps[1], argnums=1, compile="never"),
     ([1.5, 2.5], 0.5)),
    (lambda: value_and_grad(lambda t, u: t[0] * u + t[1], argnums=(0, 1), compile="never"),
     ((1.5, -2.0), 3.0)),
]  # fmt: skip


@pytest.mark.parametrize("case", range(len(SHAPES)))
def test_native_argument_and_result_shapes(case):
    make, args = SHAPES[case]
    f = make()
    first, misses = _manual(f, *args)
    got = f(*args)
    _same_or_close(got, first)  # the general path's first answer: types and values
    _same_or_close(got, type(f).__call__(f, *args))
    assert misses == []


@pytest.mark.parametrize(
    "make, args",
    [
        (lambda: value_and_grad(lambda d: d["w"] * d["b"]), ({"w": 1.5, "b": -2.0},)),
        (lambda: value_and_grad(lambda x: (x * x, x + 1.0), has_aux=True), (3.0,)),
        (lambda: grad(lambda x, n: x**n), (2.0, 3)),
        (lambda: jit(lambda x: (x, x > 0.0)), (2.0,)),
    ],
)
def test_native_not_for_other_signatures(make, args):
    f = make()
    f(*args)
    assert f._scalar is not None and "_native" not in type(f).__dict__
    _same_or_close(f(*args), _Transform.__call__(f, *args))


class MyFloat(float):
    pass


MISS_SHAPES = [
    ((2.0, 3.0, 1, 4.0),),  # an int leaf
    ((2.0, 3.0, MyFloat(1.0), 4.0),),  # a float subclass
    ((2.0, np.float64(3.0), 1.0, 4.0),),  # a NumPy scalar leaf
    ((2.0, 3.0, 1.0),),  # the wrong length
    ((2.0, 3.0, 1.0, 4.0, 5.0),),
    ([2.0, 3.0, 1.0, 4.0],),  # a list where a tuple was seen
    (P, 1.0),  # an extra argument
    (None,),
    (),
    ("params",),
    ((2.0, 3.0, 1.0, np.ones(2)),),
]


def test_native_misses_get_the_general_paths_result_or_error():
    f = value_and_grad(seed, compile="never")
    _, misses = _manual(f, P)
    for args in MISS_SHAPES:
        try:
            want = _Transform.__call__(f, *args)
        except Exception as err:
            with pytest.raises(type(err)) as got:
                f(*args)
            assert str(got.value) == str(err)
        else:
            _same_or_close(f(*args), want)
    assert len(misses) == len(MISS_SHAPES)
    for kwargs in ({"params": P}, {"other": 1.0}):  # keywords: the Python call, then general
        try:
            want = _Transform.__call__(f, **kwargs)
        except Exception as err:
            with pytest.raises(type(err)):
                f(**kwargs)
        else:
            _same_or_close(f(**kwargs), want)
    _same_or_close(f(P, **{}), _Transform.__call__(f, P))
    assert len(misses) == len(MISS_SHAPES) + 3


def test_native_refcounts_are_exact():
    f = value_and_grad(seed, compile="never")
    _manual(f, P)
    p = (float("2.5"), float("3.5"), float("1.5"), float("4.5"))  # fresh objects
    # fresh objects only: a code constant's count moves with whatever else holds it
    np_leaf = (float("2.5"), np.float64(3.0), float("1.5"), float("4.5"))
    int_leaf = (float("2.5"), float("3.5"), int("12345"), float("4.5"))
    watched = [p, *p, np_leaf, *np_leaf, int_leaf, f, type(f)]

    def counts():
        return [sys.getrefcount(x) for x in watched]

    def run(n):
        for _ in range(n):
            r = f(p)  # a hit
            f(np_leaf)  # a miss with a result
            with pytest.raises(TypeError):
                f(int_leaf)  # a miss with an error
            f(p, **{})  # a miss with an empty kwargs dict
        return r

    run(50)  # caches warm
    before = counts()
    run(500)
    assert counts() == before
    # None (the miss path passes it for absent keywords) is shared by everything, so its count
    # moves a little on its own: a leak would move it by one per call
    assert background.wait_idle(120)  # a compile thread at work moves it a lot
    none = sys.getrefcount(None)
    for _ in range(3000):
        f(np_leaf)
    assert abs(sys.getrefcount(None) - none) < 300

    # the result holds the only references to what it is made of: counted as for the Python
    # call's fresh result (outside `assert`: pytest's rewriting keeps operands alive)
    def held(res):
        return [sys.getrefcount(res), sys.getrefcount(res[0]), sys.getrefcount(res[1])] + [
            sys.getrefcount(g) for g in res[1]
        ]

    mine, python = held(f(p)), held(type(f).__call__(f, p))
    assert mine == python


def test_native_switch_while_two_threads_call():
    # a job that holds the compile thread until the threads are calling: the switch to the
    # native call then happens under them, whatever the machine's speed
    gate = threading.Event()
    hold = background.Job("gate", lambda s: (gate.wait(60), lambda: None)[1], (), id, id)
    background.submit(hold)
    f = value_and_grad(seed, compile="background")
    want = f(P)  # the general path; the native call is queued behind the gate
    results, stop, seen = [], threading.Event(), set()

    def work():
        mine = []
        while not stop.is_set():
            seen.add("_native" in type(f).__dict__)
            mine.append(f(P))
        mine += [f(P) for _ in range(200)]
        results.append(mine)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 60
        while False not in seen and time.monotonic() < deadline:
            time.sleep(0.001)  # until the threads call on the Python scalar call
        gate.set()
        assert background.wait_idle(120)
        seen.add("_native" in type(f).__dict__)
    finally:
        gate.set()
        stop.set()
        for t in threads:
            t.join()
    assert seen == {False, True} and "_native" in type(f).__dict__
    assert len(results) == 2
    for mine in results:
        assert all(native_call.same(r, want) for r in mine)
    assert TRACES_ACTIVE[0] == 0


def test_native_call_inside_a_trace_is_inlined(eager_seed):
    f = eager_seed

    def outer(w):
        value, grads = f((w, 3.0, 1.0, 4.0))  # traced w: inlined, differentiated through
        return value + grads[0]

    def outer_np(w):
        r = w * 3.0 + 1.0 - 4.0
        return r * r + 2 * r * 3.0

    d = grad(outer)
    eps, w = 1e-6, 0.7
    fd = (outer_np(w + eps) - outer_np(w - eps)) / (2 * eps)
    assert d(w) == pytest.approx(fd, rel=1e-7)
    assert TRACES_ACTIVE[0] == 0


@pytest.mark.parametrize("env", [{"GRADC_SIMD": "0"}, {"GRADC_NATIVE_CALL": "0"}])
def test_native_env_does_not_change_results(env, monkeypatch, eager_seed):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    f = value_and_grad(seed, compile="never")
    _ = f(P)
    spec = next(iter(f._cache.values()))
    args, graph = (P,), spec.stages.lowered[0].graph
    attached = attach(
        f, type(f).__call__, graph, args, list(P), spec, False, TRACES_ACTIVE, "eager"
    )
    assert attached == (env.get("GRADC_NATIVE_CALL") != "0")
    for p in [P, (0.5, -1.25, 3.0, 7.5), (-0.0, 0.0, -0.0, 0.0)]:
        _same_or_close(f(p), eager_seed(p))


def test_native_refused_when_the_layout_does_not_hold(monkeypatch, caplog):
    monkeypatch.setattr(native_call, "_type_slots_ok", lambda t: False)  # a layout surprise
    native_call.facts.cache_clear()
    try:
        assert native_call.facts() is None
        f = value_and_grad(seed, compile="eager")
        f(P)
        assert f._scalar is not None and "_native" not in type(f).__dict__
        _same_or_close(f((0.5, -1.25, 3.0, 7.5)), _Transform.__call__(f, (0.5, -1.25, 3.0, 7.5)))
        monkeypatch.setattr(native_call, "_refusal", lambda: "a simulated unknown build")
        native_call.facts.cache_clear()
        assert native_call.facts() is None
    finally:
        monkeypatch.undo()
        native_call.facts.cache_clear()
    assert native_call.facts() is not None


def test_native_not_installed_when_its_check_disagrees(monkeypatch, caplog):
    monkeypatch.setattr("compiler.codegen.llcall.same", lambda a, b: False)
    f = value_and_grad(seed, compile="eager")
    f(P)
    assert "native call of value_and_grad(seed) not built" in caplog.text
    assert f._scalar is not None and "_native" not in type(f).__dict__
    assert native_call.same(f(P), type(f).__call__(f, P))
