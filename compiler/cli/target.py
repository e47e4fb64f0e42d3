"""What a CLI command runs on: `FILE.py:FUNC` or `--example NAME`, and its `--arg` values."""

from __future__ import annotations

import importlib.util
import inspect
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from compiler.examples import get_example
from compiler.ir.types import parse_type

ARG_HELP = (
    "NAME=SPEC, SPEC one of: f64[128,784] (random normal data of that type; f32, i64, bool "
    "too), f64[3]:pos (positive), i64[128]:10 (integers in [0, 10)), 2.0 (a Python float), "
    "3 (a static Python int), true/false, str:TEXT"
)


class UsageError(ValueError):
    """A command line that cannot be run (bad FILE:FUNC, --arg or --argnums)."""


@dataclass
class Target:
    label: str  # "examples:mlp" or "path/to/file.py:loss"
    fun: Callable
    names: list[str]  # parameter names, in order
    args: list[Any]  # one value per name
    specs: list[str]  # the spec each value came from
    argnums: tuple[int, ...]  # differentiated positions

    def describe(self) -> str:
        return ", ".join(f"{n}={s}" for n, s in zip(self.names, self.specs))


def parse_spec(spec: str, rng: np.random.Generator) -> Any:
    """A value from one `--arg` spec (see ARG_HELP)."""
    text = spec.strip()
    if text.startswith("str:"):
        return text[4:]
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if "[" in text:
        return _random_array(text, rng)
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    try:
        return float(text)
    except ValueError:
        raise UsageError(f"cannot read argument spec {spec!r}; expected {ARG_HELP}") from None


def _random_array(text: str, rng: np.random.Generator) -> np.ndarray:
    head, _, option = text.partition("]")
    option = option.lstrip(":").strip()
    try:
        t = parse_type(head + "]")
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    kind = t.dtype.kind
    if kind == "f":
        a = rng.standard_normal(t.shape)
        if option == "pos":
            a = np.abs(a) + 0.1
        elif option:
            raise UsageError(f"{text}: unknown option {option!r} (float arrays take ':pos')")
        return a.astype(t.dtype)
    if kind in "iu":
        high = int(option) if option else 10
        return rng.integers(0, high, size=t.shape).astype(t.dtype)
    if kind == "b":
        return rng.random(t.shape) < 0.5
    raise UsageError(f"{text}: dtype {t.dtype} is not supported as an argument")


def load_function(ref: str) -> tuple[Callable, str]:
    """Import `FILE.py:FUNC` (the file's folder goes on sys.path) and return FUNC."""
    path_text, sep, func = ref.rpartition(":")
    if not sep or not path_text or not func:
        raise UsageError(f"expected FILE.py:FUNC, got {ref!r}")
    path = Path(path_text)
    if not path.is_file():
        raise UsageError(f"{path_text}: no such file")
    name = "gradc_user_" + re.sub(r"\W", "_", path.stem)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"{path_text}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    folder = str(path.resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    fun = getattr(module, func, None)
    if not callable(fun):
        funcs = sorted(k for k, v in vars(module).items() if inspect.isfunction(v))
        raise UsageError(f"{path_text} has no function {func!r}; it defines: {', '.join(funcs)}")
    return fun, f"{path_text}:{func}"


def _split_args(arg_items: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in arg_items:
        name, sep, spec = item.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--arg {item!r}: expected {ARG_HELP}")
        out[name.strip()] = spec
    return out


def _positional_params(fun: Callable) -> list[inspect.Parameter]:
    try:
        params = list(inspect.signature(fun).parameters.values())
    except (TypeError, ValueError):
        raise UsageError(f"cannot read the signature of {fun!r}") from None
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p for p in params if p.kind in kinds]


def parse_argnums(text: str | None, names: list[str]) -> tuple[int, ...] | None:
    """`0,2` or `W1,b1` -> positions; None when not given."""
    if text is None:
        return None
    out = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        if re.fullmatch(r"-?\d+", part):
            i = int(part)
            if not -len(names) <= i < len(names):
                raise UsageError(f"--argnums {i} is out of range for {len(names)} arguments")
            out.append(i % len(names))
        elif part in names:
            out.append(names.index(part))
        else:
            raise UsageError(f"--argnums {part!r}: not a position or one of {names}")
    if not out:
        raise UsageError("--argnums is empty")
    return tuple(out)


def _is_float_value(x: Any) -> bool:
    if isinstance(x, float):
        return True
    return isinstance(x, (np.ndarray, np.generic)) and x.dtype.kind == "f"


def resolve(
    ref: str | None,
    example: str | None,
    arg_items: Sequence[str],
    argnums: str | None,
    seed: int = 0,
) -> Target:
    """Build the Target of a command line."""
    if (ref is None) == (example is None):
        raise UsageError("give either FILE.py:FUNC or --example NAME")
    given = _split_args(arg_items)
    if example is not None:
        try:
            ex = get_example(example)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        fun, label = ex.fun, f"examples:{ex.name}"
        specs = {**ex.args, **given}
        default_argnums: tuple[int, ...] | None = ex.argnums
    else:
        fun, label = load_function(ref)
        specs, default_argnums = given, None
    params = _positional_params(fun)
    names = [p.name for p in params]
    unknown = sorted(set(specs) - set(names))
    if unknown:
        raise UsageError(f"{label} has no parameter {', '.join(unknown)}; parameters: {names}")
    rng = np.random.default_rng(seed)
    args, used, missing = [], [], []
    for p in params:
        if p.name in specs:
            args.append(parse_spec(specs[p.name], rng))
            used.append(specs[p.name])
        elif p.default is not inspect.Parameter.empty:
            args.append(p.default)
            used.append(f"{p.default!r} (default)")
        else:
            missing.append(p.name)
    if missing:
        hint = " ".join(f"--arg {n}=SPEC" for n in missing)
        raise UsageError(
            f"{label}: no value for {', '.join(missing)}; pass {hint} (SPEC: f64[3,4], 2.0, 3...)"
        )
    nums = parse_argnums(argnums, names) or default_argnums
    if nums is None:
        nums = tuple(i for i, a in enumerate(args) if _is_float_value(a))
    return Target(label, fun, names, args, used, nums)
