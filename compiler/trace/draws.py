"""Random draws inside traced functions: `rng.normal(...)` on a `np.random.Generator` (or a
legacy `RandomState`, or the `np.random.*` functions).

A draw becomes a graph input, not a constant: the graph records the call (`Draw`), and each
call of the compiled function makes it again on the real generator, in trace order, before
running the graph. So every call gets fresh numbers, the same ones NumPy would draw from that
generator eagerly, and gradients treat them as constants. Tracing itself never touches the
real generator (shapes and dtypes come from a throwaway one).

A draw whose parameters are traced (`rng.normal(mu, sigma)` with traced mu) is rewritten the
way NumPy computes it (`mu + sigma * standard_normal`, `low + (high - low) * random`), which
gives NumPy's numbers and a reparameterised gradient. Other draws with traced parameters, and
`shuffle` (in place), raise an error that names the call and the fix.
"""

from __future__ import annotations

import functools
import threading
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from compiler.ir.types import TensorType
from compiler.trace import creation
from compiler.trace.tracer import Tracer, TracerError, user_location

_GENERATORS = (np.random.Generator, np.random.RandomState)
_NOT_DRAWS = frozenset({"bit_generator", "spawn", "get_state", "set_state", "seed"})


@dataclass(eq=False)
class Source:
    """Where draws come from at call time: a generator object (closure, argument, the
    global RandomState), or a fresh one made once per call (`default_rng()` inside)."""

    obj: Any = None
    factory: Callable[[], Any] | None = None

    def example(self) -> Any:
        """A throwaway generator of the same kind (for shapes and dtypes at trace time)."""
        legacy = isinstance(self.obj, np.random.RandomState)
        return np.random.RandomState(0) if legacy else np.random.default_rng(0)


@dataclass(eq=False)
class Draw:
    """One recorded draw: `getattr(generator, method)(*args, **kwargs)`."""

    source: Source
    method: str
    args: tuple
    kwargs: dict = field(default_factory=dict)
    type: TensorType | None = None

    def describe(self) -> str:
        parts = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"{self.method}({', '.join(parts)})"


def sample(draws: Sequence[Draw]) -> list[np.ndarray]:
    """Make the recorded draws on the real generators, in order (one call's worth)."""
    made: dict[int, Any] = {}
    out = []
    for d in draws:
        src = d.source
        if src.factory is not None:
            gen = made.get(id(src))
            if gen is None:
                gen = made[id(src)] = src.factory()
        else:
            gen = src.obj
        x = getattr(gen, d.method)(*d.args, **d.kwargs)
        if d.type is None:  # an event (np.random.seed), not a draw
            continue
        out.append(np.ascontiguousarray(x, dtype=d.type.dtype).reshape(d.type.shape))
    return out


def _has_tracer(args: tuple, kwargs: dict) -> bool:
    return any(creation.has_tracer(a) for a in (*args, *kwargs.values()))


def _record(source: Source, method: str, args: tuple, kwargs: dict) -> Tracer:
    ctx = creation.current()
    if ctx is None:
        raise TracerError("internal: a traced draw outside a trace")
    example = getattr(source.example(), method)(*args, **kwargs)
    arr = np.asarray(example)
    if arr.dtype.kind not in "fiub" or arr.dtype == np.float16:
        raise NotImplementedError(
            f"rng.{method}: draws of dtype {arr.dtype} are not supported by gradc "
            f"(at {user_location()})"
        )
    d = Draw(source, method, tuple(args), dict(kwargs), TensorType(arr.shape, arr.dtype))
    weak = isinstance(example, (float, int)) and not isinstance(example, np.generic)
    return Tracer(ctx, ctx.draw_input(d), weak=weak)


def _reparam(source: Source, method: str, args: tuple, kwargs: dict) -> Tracer:
    """normal/uniform with traced parameters, as NumPy computes them."""
    legacy = isinstance(source.obj, np.random.RandomState)
    names = {"normal": ("loc", "scale", 0.0, 1.0), "uniform": ("low", "high", 0.0, 1.0)}
    p, q, p0, q0 = names[method]
    bound = dict(zip((p, q, "size"), args))
    bound.update(kwargs)
    a, b, size = bound.get(p, p0), bound.get(q, q0), bound.get("size")
    shape = np.broadcast_shapes(np.shape(a), np.shape(b)) if size is None else size
    if method == "normal":
        z = _record(source, "standard_normal", (), {"size": shape})
        return a + b * z
    u = _record(source, "random_sample" if legacy else "random", (), {"size": shape})
    return a + (b - a) * u


def draw(source: Source, method: str, *args: Any, **kwargs: Any) -> Any:
    """A draw as user code sees it: a traced graph input filled at every call."""
    if creation.current() is None:  # the traced function escaped its trace
        gen = source.obj if source.factory is None else source.factory()
        return getattr(gen, method)(*args, **kwargs)
    if method == "shuffle":
        raise TracerError(
            f"rng.shuffle shuffles in place, which gradc cannot trace (at {user_location()}); "
            "use x = x[rng.permutation(len(x))]"
        )
    if _has_tracer(args, kwargs):
        if method in ("normal", "uniform"):
            return _reparam(source, method, args, kwargs)
        raise TracerError(
            f"rng.{method}(...) with traced parameters cannot be reproduced by gradc (at "
            f"{user_location()}); draw the noise outside the function and pass it in as an "
            "argument, or draw standard noise inside and transform it with NumPy arithmetic"
        )
    return _record(source, method, args, kwargs)


class TracedGenerator:
    """A generator as user code sees it: each draw method records a `Draw`."""

    def __init__(self, source: Source) -> None:
        self._source = source

    def __getattr__(self, name: str) -> Any:
        real = self._source.obj if self._source.obj is not None else self._source.example()
        attr = getattr(real, name)
        if name == "seed" and isinstance(real, np.random.RandomState):
            return functools.partial(_seed, self._source)
        if name.startswith("_") or name in _NOT_DRAWS or not callable(attr):
            if self._source.obj is None:
                raise AttributeError(f"{name} of a generator made inside a traced function")
            return attr
        return functools.partial(draw, self._source, name)

    def __repr__(self) -> str:
        return f"TracedGenerator({self._source.obj!r})"


def _default_rng(seed: Any = None) -> Any:
    if seed is not None or creation.current() is None:
        # a fixed seed draws the same numbers on every call: a constant is exact
        return np.random.default_rng(seed)
    return TracedGenerator(Source(factory=np.random.default_rng))


def _seed(source: Source, *args: Any, **kwargs: Any) -> None:
    """`np.random.seed(s)` inside the function: replayed, in order, at every call."""
    ctx = creation.current()
    if ctx is None:
        source.obj.seed(*args, **kwargs)
        return
    ctx.draw_input(Draw(source, "seed", tuple(args), dict(kwargs), None))


def view(v: Any) -> Any:
    """The traced stand-in for a generator or one of its bound draw methods, else None."""
    if isinstance(v, _GENERATORS):
        return TracedGenerator(Source(obj=v))
    owner = getattr(v, "__self__", None)
    if isinstance(owner, _GENERATORS) and callable(v):  # np.random.normal, rng.normal
        name = getattr(v, "__name__", "")
        if name == "seed" and isinstance(owner, np.random.RandomState):
            return functools.partial(_seed, Source(obj=owner))
        if name.startswith("_") or name in _NOT_DRAWS:
            return None
        return getattr(view(owner), name)
    if v is np.random.default_rng:
        return _default_rng
    if v is np.random.seed:  # a module function that reseeds the global RandomState
        return functools.partial(_seed, Source(obj=np.random.mtrand._rand))
    return None


def _referenced(f: types.FunctionType) -> list:
    """What a function reads through its closure and its globals."""
    out = []
    for cell in f.__closure__ or ():
        try:
            out.append(cell.cell_contents)
        except ValueError:
            pass
    g = f.__globals__
    out.extend(g[n] for n in f.__code__.co_names if n in g)
    return out


def _reachable_generators(roots: list, limit: int = 512) -> list:
    """Generators reachable from `roots` through functions' closures and globals and
    objects' attributes, a few levels deep (`loss -> model -> model.rng`); plus NumPy's
    global RandomState when this is the only thread (another thread may draw from it
    meanwhile, which must not fail this trace)."""
    found: dict[int, Any] = {}
    if threading.active_count() == 1:
        found[id(np.random.mtrand._rand)] = np.random.mtrand._rand
    seen: set[int] = set()
    level = list(roots)
    for _ in range(5):
        nxt: list = []
        for obj in level:
            if obj is None or id(obj) in seen or len(seen) > limit:
                continue
            seen.add(id(obj))
            if isinstance(obj, _GENERATORS):
                found[id(obj)] = obj
            elif isinstance(obj, types.FunctionType):
                nxt.extend(_referenced(obj))
            elif isinstance(obj, types.MethodType):
                nxt.extend([obj.__func__, obj.__self__])
            elif isinstance(obj, (list, tuple)):
                nxt.extend(obj[:32])
            elif isinstance(obj, dict):
                nxt.extend(list(obj.values())[:32])
            elif not isinstance(obj, (types.ModuleType, type, np.ndarray, np.generic)):
                try:  # a plain attribute dict; anything exotic (proxies) is skipped
                    attrs = object.__getattribute__(obj, "__dict__")
                except Exception:
                    continue
                if isinstance(attrs, dict):
                    nxt.extend(list(attrs.values())[:64])
        level = nxt
    return list(found.values())


def _state(gen: Any) -> Any:
    if isinstance(gen, np.random.RandomState):
        return gen.get_state(legacy=False)["state"]["key"].tobytes() + bytes(
            str(gen.get_state(legacy=False)["state"]["pos"]), "ascii"
        )
    return repr(gen.bit_generator.state)


class FreezeGuard:
    """Catches draws made during a trace by code the traced view does not reach (a method of
    an object holding a generator, a library calling `np.random.*`): their numbers would be
    frozen into the compiled function, so the trace fails instead."""

    def __init__(self, fun: Any, leaves: list) -> None:
        roots = [fun, *leaves]
        self._gens = [(gen, _state(gen)) for gen in _reachable_generators(roots)]

    def check(self) -> None:
        for gen, before in self._gens:
            if _state(gen) != before:
                what = (
                    "np.random's global generator"
                    if gen is np.random.mtrand._rand
                    else f"the generator {gen!r}"
                )
                raise TracerError(
                    f"{what} drew numbers while the function was traced, in code gradc does "
                    "not trace (a method of an object, or a library function); those numbers "
                    "would be frozen into the compiled function. Draw from the generator in "
                    "the traced function itself (or a plain helper it calls), or draw outside "
                    "and pass the noise in as an argument"
                )
