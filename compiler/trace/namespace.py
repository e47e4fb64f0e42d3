"""The traced NumPy namespace: the user's code, and only the user's code, sees it.

NumPy's protocols (`__array_ufunc__`, `__array_function__`) never see calls without an array
argument (`np.zeros(3)`, `np.array([x, y])`, `np.mean([a, b])`, `rng.normal(size=3)`). So the
traced function runs as a copy of itself whose global namespace is a read-through view of
its module's (`_Globals`): there `np`, `numpy.linalg`, `scipy.special`, `from numpy import
zeros`, a `np.random.Generator` and the user's own helper functions resolve to traced
versions. The same goes for closure cells, static arguments, and `import` statements run
inside the function (its builtins carry a wrapped `__import__`). Functions defined while
the traced code runs inherit the view. Nothing global changes: NumPy's own C and Python
code, other threads and every module keep NumPy's functions (DESIGN: "Only the user's code
may see traced functions").

What the view cannot reach: methods of objects (`model.forward(x)` where `model` was built
outside) and functions in installed packages run with the real NumPy. There `np.zeros`
gives a concrete array and `rng.normal` a draw made at trace time; see docs/user-guide.md.
"""

from __future__ import annotations

import builtins
import functools
import os
import site
import sys
import sysconfig
import types
from collections.abc import Callable
from typing import Any

import numpy as np

from compiler.trace import creation
from compiler.trace.tracer import _PKG_DIR, _USER_FILES

# NumPy/SciPy callable -> the traced version user code sees (filled by creation, random,
# and the primitive families' tracer entries); keyed by id, the keys are kept alive here
OVERRIDES: dict[int, tuple[Any, Any]] = {}


def override(original: Any, traced: Any) -> None:
    """User code that reaches `original` (any spelling) calls `traced` instead."""
    OVERRIDES[id(original)] = (original, traced)


# module name -> callbacks that register that module's overrides once it is imported. gradc
# does not import heavy libraries the user's code may never use (scipy.linalg loads a second
# OpenBLAS whose threads slow NumPy's matmuls); user code that reaches one has imported it.
_PENDING: dict[str, list[Callable[[Any], None]]] = {}


def override_module(name: str, register: Callable[[Any], None]) -> None:
    """Run `register(module)` once module `name` is imported (now, if it already is)."""
    _PENDING.setdefault(name, []).append(register)
    _flush_pending()


def _flush_pending() -> None:
    for name in [n for n in _PENDING if n in sys.modules]:
        for register in _PENDING.pop(name):
            register(sys.modules[name])


for _k, _v in creation.CREATION.items():
    override(_k, _v)

# NumPy functions whose first argument is a sequence of arrays: its items are converted,
# not the sequence (np.concatenate([a, [x, y]]))
_SEQUENCE_FUNCS = {
    id(f): f
    for f in (
        np.concatenate,
        np.stack,
        np.vstack,
        np.hstack,
        np.dstack,
        np.column_stack,
        np.block,
        np.select,
        np.choose,
        np.lexsort,
        np.linalg.multi_dot,
    )
}


def _library_dirs() -> tuple[str, ...]:
    dirs = {os.path.dirname(np.__file__), _PKG_DIR}
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        try:
            dirs.add(sysconfig.get_paths()[key])
        except KeyError:
            pass
    try:
        dirs.update(site.getsitepackages())
    except AttributeError:  # some virtualenv layouts
        pass
    return tuple(sorted(d for d in dirs if d))


_LIBRARY_DIRS = _library_dirs()
_LIBRARY_ROOTS = ("numpy", "scipy")


def is_user_file(filename: str) -> bool:
    """Code gradc traces through: everything but gradc itself, the standard library and
    installed packages (gradc's built-in examples count as user code)."""
    if filename in _USER_FILES:
        return True
    if filename.startswith("<frozen"):
        return False
    return not filename.startswith(_LIBRARY_DIRS)


def _is_gradc_file(filename: str) -> bool:
    return filename.startswith(_PKG_DIR) and filename not in _USER_FILES


def _converted(x: Any) -> Any:
    return creation.array_from(x) if isinstance(x, (list, tuple)) and creation.has_tracer(x) else x


def _convert_args(seq_first: bool, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """Lists/tuples holding tracers, where NumPy expects an array, become traced arrays."""
    if seq_first and args and isinstance(args[0], (list, tuple)):
        args = (type(args[0])(_converted(a) for a in args[0]), *args[1:])
        rest = args[1:]
        return (args[0], *(_converted(a) for a in rest)), {
            k: _converted(v) for k, v in kwargs.items()
        }
    return tuple(_converted(a) for a in args), {k: _converted(v) for k, v in kwargs.items()}


def _numpy_wrapper(f: Any) -> Any:
    seq_first = id(f) in _SEQUENCE_FUNCS

    @functools.wraps(f)
    def call(*args: Any, **kwargs: Any) -> Any:
        if creation.current() is not None:
            args, kwargs = _convert_args(seq_first, args, kwargs)
        return f(*args, **kwargs)

    return call


class UfuncProxy:
    """A NumPy or SciPy ufunc as user code sees it: list arguments holding tracers become
    arrays; everything else (`.reduce`, `.at`, `.nin`) is the ufunc's own."""

    def __init__(self, ufunc: np.ufunc) -> None:
        self._ufunc = ufunc
        functools.update_wrapper(self, ufunc, updated=())

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if creation.current() is not None:
            args, kwargs = _convert_args(False, args, kwargs)
        return self._ufunc(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._ufunc, name)
        if callable(attr) and name in ("reduce", "accumulate", "outer", "at", "reduceat"):
            return _numpy_wrapper(attr)
        return attr

    def __repr__(self) -> str:
        return repr(self._ufunc)


class ModuleProxy(types.ModuleType):
    """A module as user code sees it: each attribute through the trace's `View`."""

    def __init__(self, view: View, module: types.ModuleType) -> None:
        super().__init__(module.__name__, module.__doc__)
        object.__setattr__(self, "_gradc_view", view)
        object.__setattr__(self, "_gradc_module", module)

    def __getattr__(self, name: str) -> Any:
        value = self._gradc_view.of(getattr(self._gradc_module, name))
        object.__setattr__(self, name, value)  # cached: later reads skip __getattr__
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._gradc_module, name, value)  # writes reach the real module
        self.__dict__.pop(name, None)

    def __dir__(self) -> list[str]:
        return dir(self._gradc_module)


class _Globals(dict):
    """A function's globals seen through a View: reads fall through to the real module
    dict (`__missing__`); global writes land here and are copied back by `View.close`."""

    def __init__(self, view: View, real: dict) -> None:
        super().__init__()
        self._real = real
        self._view = view
        dict.__setitem__(self, "__builtins__", view.builtins)

    def __missing__(self, name: str) -> Any:
        return self._view.of(self._real[name])  # KeyError: Python then tries builtins

    # `globals().get(...)` and `in globals()` see the module's names too
    def get(self, name: str, default: Any = None) -> Any:
        try:
            return self[name]
        except KeyError:
            return default

    def __contains__(self, name: object) -> bool:
        return dict.__contains__(self, name) or name in self._real


class View:
    """One trace's view of the user's world: traced modules, functions and generators."""

    def __init__(self, random_view: Any = None) -> None:
        self._cache: dict[int, tuple[Any, Any]] = {}
        self._globals: dict[int, _Globals] = {}
        self._pending: dict[int, bool] = {}  # functions being rebound: reached recursively?
        self.random_view = random_view  # (obj) -> traced generator or None
        self.builtins = dict(builtins.__dict__)
        self.builtins["__import__"] = self._import

    def _import(self, name, globals=None, locals=None, fromlist=(), level=0):
        real = globals._real if isinstance(globals, _Globals) else globals  # relative imports
        return self.of(builtins.__import__(name, real, locals, fromlist, level))

    def close(self) -> None:
        """Copy global variables the traced code assigned back into their modules."""
        for g in self._globals.values():
            for k, v in g.items():
                if k != "__builtins__":
                    g._real[k] = v

    def globals_for(self, real: dict) -> _Globals:
        g = self._globals.get(id(real))
        if g is None:
            g = self._globals[id(real)] = _Globals(self, real)
        return g

    def of(self, v: Any) -> Any:
        """What user code sees in place of v (v itself when nothing is traced about it)."""
        if v is None or isinstance(v, (bool, int, float, str, np.ndarray)):
            return v
        hit = self._cache.get(id(v))
        if hit is not None and hit[0] is v:
            if id(v) in self._pending:
                self._pending[id(v)] = True  # reached again while its closure is viewed
            return hit[1]
        if _PENDING:
            _flush_pending()
        ov = OVERRIDES.get(id(v))
        if ov is not None and ov[0] is v:
            out = ov[1]
        else:
            out = self._make(v)
        self._cache[id(v)] = (v, out)
        return out

    def _make(self, v: Any) -> Any:
        if self.random_view is not None:
            r = self.random_view(v)
            if r is not None:
                return r
        if isinstance(v, types.ModuleType):
            name = v.__name__.split(".")[0]
            if name in _LIBRARY_ROOTS or is_user_file(getattr(v, "__file__", None) or "<lib>"):
                return ModuleProxy(self, v)
            return v
        if isinstance(v, types.FunctionType):
            fn = v.__code__.co_filename
            if is_user_file(fn):
                return self._rebind(v, with_globals=True)
            if _is_gradc_file(fn):  # gradc's wrappers (checkpoint): their closures only
                return self._rebind(v, with_globals=False)
            if _is_numpy_callable(v):
                return _numpy_wrapper(v)
            return v
        if isinstance(v, np.ufunc):
            return UfuncProxy(v)
        if isinstance(v, types.MethodType):
            f = self.of(v.__func__)
            return v if f is v.__func__ else types.MethodType(f, v.__self__)
        if isinstance(v, functools.partial):
            f = self.of(v.func)
            return v if f is v.func else functools.partial(f, *v.args, **v.keywords)
        if _is_numpy_callable(v):
            return _numpy_wrapper(v)
        return v

    def entry(self, fun: Any) -> Any:
        """The traced function itself: a user function rebound; any other function (gradc's
        own wrappers) with its closure seen through the view; a callable object's method."""
        if isinstance(fun, types.FunctionType) and not is_user_file(fun.__code__.co_filename):
            return self._rebind(fun, with_globals=False)
        out = self.of(fun)
        if out is fun and not isinstance(fun, (types.FunctionType, types.MethodType)):
            call = type(fun).__dict__.get("__call__")  # a user class's own __call__
            if isinstance(call, types.FunctionType) and is_user_file(call.__code__.co_filename):
                return types.MethodType(self.of(call), fun)
        return out

    def _rebind(self, f: types.FunctionType, with_globals: bool) -> Any:
        cells = f.__closure__ or ()
        g = self.globals_for(f.__globals__) if with_globals else f.__globals__
        # a placeholder with fresh cells is cached first, so that a recursive closure (a
        # nested function that calls itself) finds it; it is used only in that case
        fresh = tuple(types.CellType() for _ in cells)
        placeholder = _copy_function(f, g, fresh)
        self._cache[id(f)] = (f, placeholder)
        self._pending[id(f)] = False
        seen = []
        for c in cells:
            try:
                x = c.cell_contents
            except ValueError:  # an empty cell (a name assigned later)
                seen.append((c, None, False))
                continue
            y = self.of(x)
            seen.append((c, y, y is not x))
        recursive = self._pending.pop(id(f))
        changed = with_globals or any(ch for _, _, ch in seen)
        if not changed:
            out = f
        elif recursive:
            for nc, (_, y, _) in zip(fresh, seen):
                if y is not None:
                    nc.cell_contents = y
            out = placeholder
        else:
            # unchanged cells are shared, so nonlocal writes stay visible both ways
            final = tuple(c if not ch else types.CellType(y) for c, y, ch in seen)
            out = _copy_function(f, g, final)
        self._cache[id(f)] = (f, out)
        return out


def _copy_function(f: types.FunctionType, g: dict, cells: tuple) -> types.FunctionType:
    new = types.FunctionType(f.__code__, g, f.__name__, f.__defaults__, cells or None)
    new.__kwdefaults__ = f.__kwdefaults__
    new.__qualname__ = f.__qualname__
    new.__module__ = f.__module__
    new.__doc__ = f.__doc__
    new.__dict__.update(f.__dict__)
    return new


def _is_numpy_callable(v: Any) -> bool:
    if isinstance(v, type) or not callable(v):
        return False
    mod = getattr(v, "__module__", None) or ""
    return mod.split(".")[0] in _LIBRARY_ROOTS
