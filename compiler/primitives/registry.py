"""The primitive registry: one OpDef record per op, holding everything about it.

Rules (vjp, jvp) are written in plain NumPy syntax: on ndarrays they compute numbers,
on tracers they emit graph nodes. Ops without a NumPy spelling are reached through
`bind(name, *args, **attrs)`, which does the same dispatch.
"""

from __future__ import annotations

import contextlib
import enum
import importlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from compiler.ir.graph import OUT_TYPES_RULES, SHAPE_RULES, ShapeError
from compiler.ir.types import TensorType


class Kind(enum.Enum):
    ELEMENTWISE = "elementwise"
    REDUCE = "reduce"
    SHAPE = "shape"  # reshape/transpose/broadcast/slice: views where the layout allows
    INDEX = "index"  # gather, scatter, set_slice, concatenate
    LINALG = "linalg"
    SCAN = "scan"  # cumulative ops, products, sorting: NumPy calls from the driver
    CONST = "const"
    LOOP = "loop"  # scan, while_loop: a body graph run many times (compiler/primitives/control.py)
    FUSED = "fused"  # a fusion group: a body graph run once, as one loop nest (passes/fuse.py)


class Lowering(enum.Enum):
    """How codegen lowers an op; codegen maps each kind to its renderer (codegen/driver.py)."""

    SCALAR = "scalar"  # the `ScalarExpr` inside loop kernels (or, routed, a library ufunc call)
    REDUCE = "reduce"  # an accumulation ending a loop nest (or NumPy's reduction when alone)
    LIBRARY = "library"  # the driver calls the reference implementation (NumPy, SciPy, LAPACK)
    VIEW = "view"  # a NumPy view of the first operand where the layout allows
    CUSTOM = "custom"  # a renderer of its own, keyed by op name (codegen/lowering.py `LOWER`)


class Cost(enum.Enum):
    FREE = 0  # views, constants
    CHEAP = 1  # arithmetic: recompute rather than store
    TRANSCENDENTAL = 2  # exp/log/tanh...: recompute only when it saves a stored array
    EXPENSIVE = 3  # matmul, reductions: always store


@dataclass(frozen=True)
class ScalarExpr:
    """Numba template of an elementwise op: `{0}`, `{1}` are operand expressions and
    `{T}` the kernel's dtype constructor (`np.float64`), so literals stay in dtype."""

    template: str


@dataclass(frozen=True)
class Sample:
    """Inputs (arrays) and attributes for one generic-test case of an op."""

    args: tuple[np.ndarray, ...]
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OpDef:
    name: str
    shape_rule: Callable[..., TensorType]
    impl: Callable[..., np.ndarray]
    kind: Kind
    vjp: Callable[..., tuple] | None = None  # vjp(ct, *inputs, out=, **attrs) -> per-input ct
    jvp: Callable[..., Any] | None = None  # jvp(tangents, *inputs, out=, **attrs) -> tangent
    codegen: ScalarExpr | str | None = None  # ScalarExpr for elementwise; a kernel name else
    cost: Cost = Cost.CHEAP
    samples: Callable[[np.random.Generator], list[Sample]] | None = None
    differentiable: bool = True  # False: comparisons, masks, sign...: zero gradient by design
    grad_doc: str = ""  # the gradient convention, for the generated op table
    # dtypes (names) where a library call (NumPy's SIMD ufunc, from the driver) beats a
    # compiled scalar loop; the `route` pass reads it (measurements in docs/routing.md)
    library: tuple[str, ...] = ()
    # how codegen lowers it; None derives it: a ScalarExpr is SCALAR, a REDUCE-kind op
    # REDUCE, anything else a LIBRARY call of `impl` (views and custom renderers say so)
    lowering: Lowering | None = None
    # the NumPy/SciPy ufunc the tracer maps onto this op; None takes an elementwise op's
    # `impl` when it is one (matmul's gufunc is traced by its own handler). A dotted path
    # ("scipy.special.expit") names a ufunc of a module gradc does not import until it is
    # needed (`resolve_ufunc`): scipy.special was 40% of `import compiler` (docs/caching.md)
    ufunc: np.ufunc | str | None = None
    commutative: bool = False  # operands may be swapped without changing one bit (cse)
    # ops with several outputs (loops, fusion groups) type all of them: out_types(ts, **attrs)
    out_types: Callable[..., Sequence[TensorType]] | None = None

    def resolve_ufunc(self) -> np.ufunc | None:
        """The ufunc object the tracer maps onto this op (importing its module if named)."""
        return resolve(self.ufunc) if isinstance(self.ufunc, str) else self.ufunc

    def prefers_library(self, dtype: np.dtype) -> bool:
        """Whether this op on `dtype` runs faster as a library call than in a loop."""
        return np.dtype(dtype).name in self.library

    def __post_init__(self) -> None:
        if self.differentiable and (self.vjp is None or self.jvp is None):
            raise TypeError(f"op {self.name}: a differentiable op needs vjp and jvp rules")
        if self.lowering is None:
            if isinstance(self.codegen, ScalarExpr):
                derived = Lowering.SCALAR
            elif self.kind is Kind.REDUCE:
                derived = Lowering.REDUCE
            else:
                derived = Lowering.LIBRARY
            object.__setattr__(self, "lowering", derived)  # frozen: set once, here
        if (self.lowering is Lowering.SCALAR) != isinstance(self.codegen, ScalarExpr):
            raise TypeError(f"op {self.name}: a SCALAR lowering is exactly a ScalarExpr codegen")
        if self.library and self.lowering is not Lowering.SCALAR:
            raise TypeError(f"op {self.name}: library dtypes apply to SCALAR ops only")
        if self.ufunc is None and self.kind is Kind.ELEMENTWISE and isinstance(self.impl, np.ufunc):
            object.__setattr__(self, "ufunc", self.impl)


OPS: dict[str, OpDef] = {}


def resolve(path: str) -> Any:
    """The object a dotted path names (`scipy.special.expit`), importing its module."""
    module, _, attr = path.rpartition(".")
    return getattr(importlib.import_module(module), attr)


def register(op: OpDef) -> OpDef:
    """Add an op record; the name must be new."""
    if op.name in OPS:
        raise ValueError(f"op {op.name!r} registered twice")
    OPS[op.name] = op
    SHAPE_RULES[op.name] = op.shape_rule
    if op.out_types is not None:
        OUT_TYPES_RULES[op.name] = op.out_types
    return op


def ops_lowered(lowering: Lowering) -> frozenset[str]:
    """The names of the registered ops with this lowering (read after registration)."""
    return frozenset(name for name, d in OPS.items() if d.lowering is lowering)


# The innermost active trace's bind hook, so that ops without traced operands (a `full`
# of zeros inside a VJP rule) become nodes instead of materialised arrays.
_ACTIVE = threading.local()


@contextlib.contextmanager
def active_trace(hook: Callable[[str, tuple, dict], Any]):
    """Make `hook` receive `bind` calls that have no traced operand (used by tracers)."""
    stack = _ACTIVE.__dict__.setdefault("stack", [])
    stack.append(hook)
    try:
        yield
    finally:
        stack.pop()


def bind(name: str, *args: Any, **attrs: Any) -> Any:
    """Apply op `name`: emit a node if any argument is traced, else run the reference impl."""
    for a in args:
        hook = getattr(a, "_gradc_bind", None)
        if hook is not None:
            return hook(name, args, attrs)
    stack = getattr(_ACTIVE, "stack", None)
    if stack:
        return stack[-1](name, args, attrs)
    return OPS[name].impl(*[np.asarray(a) for a in args], **attrs)


def fail(op: str, msg: str, *types: TensorType) -> ShapeError:
    """A shape error that names the op and the operand types."""
    ts = " with ".join(str(t) for t in types)
    return ShapeError(f"{op}: {msg}" + (f" ({ts})" if ts else ""))


def broadcast_shapes(op: str, types: Sequence[TensorType]) -> tuple[int, ...]:
    try:
        return tuple(np.broadcast_shapes(*[t.shape for t in types]))
    except ValueError:
        raise fail(op, "cannot broadcast", *types) from None
