"""The `gradc` command line (also `python -m compiler`).

gradc demo                                  the backpropagation walkthrough, checked
gradc ir FILE.py:FUNC --arg x=f64[128,784]  print a stage: traced, grad, passes, plan, kernel
gradc check FILE.py:FUNC --arg ...          gradient vs finite differences, localised
gradc bench FILE.py:FUNC --arg ...          compile time, per-call time, peak memory
gradc cache info|clear                      the compiled-module cache
gradc examples                              the built-in examples (--example NAME)
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from compiler.cli.cache_report import report
from compiler.cli.target import ARG_HELP, UsageError, resolve
from compiler.logging_setup import configure, configure_from_env

# the transformation `ir` and `bench` compile (jacobian and hessian: a jit of that transform)
MODES = ("value_and_grad", "jit", "vjp", "jacobian", "hessian")

_PKG = str(Path(__file__).resolve().parents[1])
_RUNTIME = str(Path(__file__).resolve().parents[2] / "runtime")


def _target_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", nargs="?", help="FILE.py:FUNC, the function to compile")
    p.add_argument(
        "--example",
        metavar="NAME",
        help="a built-in example instead of FILE.py:FUNC (see `gradc examples`)",
    )
    p.add_argument("--arg", action="append", default=[], metavar="NAME=SPEC", help=ARG_HELP)
    p.add_argument(
        "--argnums",
        metavar="I,J|NAMES",
        help="arguments to differentiate (default: every float argument)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the random argument data")
    p.add_argument(
        "--disable",
        action="append",
        default=[],
        metavar="PASS",
        help="turn a pass off (repeatable)",
    )


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS,
        help="log what gradc does (-vv: debug); also GRADC_LOG=info|debug",
    )
    parser = argparse.ArgumentParser(
        prog="gradc",
        parents=[common],
        description="gradc: compile plain-NumPy functions to gradient functions.",
    )
    parser.set_defaults(verbose=0)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("demo", parents=[common], help="the backpropagation walkthrough")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("ir", parents=[common], help="print the graph of one pipeline stage")
    _target_options(p)
    p.add_argument(
        "--stage",
        default="passes",
        choices=("traced", "grad", "passes", "plan", "kernel"),
        help="traced, grad (joint graph), passes (optimized, default), plan, "
        "kernel (generated Numba source)",
    )
    p.add_argument("--mode", default="value_and_grad", choices=MODES)
    p.add_argument(
        "--print-after",
        metavar="PASS",
        help="the graph right after this pipeline pass (see docs/architecture.md)",
    )
    p.add_argument("--memory", choices=("sqrt",), help="plan with memory='sqrt' (as the API)")
    p.add_argument("--format", default="text", choices=("text", "dot", "json", "svg", "png"))
    p.add_argument("--locs", action="store_true", help="the user's source line of each node")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    p.set_defaults(func=_cmd_ir)

    p = sub.add_parser(
        "check",
        parents=[common],
        help="compare gradients with finite differences; localise a mismatch",
    )
    _target_options(p)
    p.add_argument(
        "--backend", choices=("numba", "interpret"), help="default: $GRADC_BACKEND or numba"
    )
    p.add_argument("--tol", type=float, help="relative tolerance (default 1e-5, f32: 2e-3)")
    p.set_defaults(func=_cmd_check)

    p = sub.add_parser(
        "bench",
        parents=[common],
        help="compile time, per-call time and peak memory, vs the interpreter",
    )
    _target_options(p)
    p.add_argument("--mode", default="value_and_grad", choices=MODES)
    p.add_argument(
        "--backend",
        action="append",
        choices=("numba", "interpret"),
        help="backends to compare (repeatable; default both)",
    )
    p.add_argument("--time", type=float, default=1.0, metavar="S", help="seconds per backend")
    p.add_argument("--warm", action="store_true", help="keep the disk cache for the first call")
    p.add_argument(
        "--compile",
        default="eager",
        choices=("eager", "background", "never"),
        help="numba's compile mode (default eager: the first call includes the compile; "
        "background: it runs on the NumPy tier, docs/tiers.md)",
    )
    p.set_defaults(func=_cmd_bench)

    p = sub.add_parser("cache", parents=[common], help="the compiled-module cache")
    p.add_argument("action", choices=("info", "clear"))
    p.set_defaults(func=_cmd_cache)

    p = sub.add_parser(
        "route",
        parents=[common],
        help="this host's routing calibration: show it, or measure it again now",
    )
    p.add_argument("action", choices=("show", "calibrate"))
    p.set_defaults(func=_cmd_route)

    p = sub.add_parser("examples", parents=[common], help="list the built-in examples")
    p.set_defaults(func=_cmd_examples)
    return parser


# -- commands ------------------------------------------------------------------------------------
def _cmd_demo(ns: argparse.Namespace) -> int:
    from compiler.cli.demo import run_demo

    return run_demo()


def _target(ns: argparse.Namespace):
    return resolve(ns.target, ns.example, ns.arg, ns.argnums, ns.seed)


def _cmd_ir(ns: argparse.Namespace) -> int:
    from compiler.cli.stages import render, stage_sections

    target = _target(ns)
    sections = stage_sections(target, ns.stage, ns.mode, ns.disable, ns.print_after, ns.memory)
    data = render(sections, ns.format, ns.locs)
    if ns.output:
        Path(ns.output).write_bytes(data)
        print(f"wrote {ns.output} ({len(data)} bytes)", file=sys.stderr)
    elif ns.format == "png" and sys.stdout.isatty():
        raise UsageError("--format png writes binary data: use -o FILE.png")
    else:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    return 0


def _cmd_check(ns: argparse.Namespace) -> int:
    from compiler.cli.check import check_gradients

    t = _target(ns)
    print(f"checking {t.label}({t.describe()}) w.r.t. {', '.join(t.names[i] for i in t.argnums)}")
    report = check_gradients(
        t.fun,
        t.args,
        t.argnums,
        names=t.names,
        backend=ns.backend,
        disable=ns.disable,
        tol=ns.tol,
        seed=ns.seed,
        # the compiled code, not the NumPy tier a single background-mode call would run,
        # unless GRADC_COMPILE says otherwise (docs/tiers.md)
        compile=None if os.environ.get("GRADC_COMPILE") else "eager",
    )
    print(report.format())
    return 0 if report.ok else 1


def _cmd_bench(ns: argparse.Namespace) -> int:
    from compiler.cli.bench import bench, format_results

    t = _target(ns)
    print(f"bench {t.label}({t.describe()}), mode {ns.mode}")
    results = bench(
        t,
        ns.mode,
        tuple(ns.backend or ("numba", "interpret")),
        ns.disable,
        budget_s=ns.time,
        cold=not ns.warm,
        compile=ns.compile,
    )
    print(format_results(results))
    return 0


def _cmd_cache(ns: argparse.Namespace) -> int:
    from runtime import cache

    if ns.action == "clear":
        n = cache.clear_cache()
        print(f"removed {n} cache entries from {cache.cache_root()}")
        return 0
    from compiler.codegen import simd

    print(report(simd.cache_mode()))  # the folder this process's compiles would use
    return 0


def _cmd_route(ns: argparse.Namespace) -> int:
    from compiler.cli import route

    print(route.show() if ns.action == "show" else route.recalibrate())
    return 0


def _cmd_examples(ns: argparse.Namespace) -> int:
    from compiler.examples import EXAMPLES

    for e in EXAMPLES.values():
        args = " ".join(f"{k}={v}" for k, v in e.args.items())
        print(f"{e.name:<8} {e.doc}\n         {args}")
    return 0


# -- errors ----------------------------------------------------------------------------------------
def _user_frame(exc: BaseException) -> str | None:
    """`file:line` of the innermost traceback frame outside gradc, NumPy and the stdlib."""
    import numpy

    skip = (_PKG, _RUNTIME, os.path.dirname(numpy.__file__), os.path.dirname(os.__file__))
    where = None
    for frame, line in traceback.walk_tb(exc.__traceback__):
        fn = frame.f_code.co_filename
        if not fn.startswith(skip) and not fn.startswith("<"):
            where = f"{os.path.relpath(fn) if fn.startswith(os.getcwd()) else fn}:{line}"
    return where


def _report(exc: BaseException) -> None:
    msg = str(exc) or type(exc).__name__
    print(f"gradc: {type(exc).__name__}: {msg}", file=sys.stderr)
    where = _user_frame(exc)
    if where and where not in msg:
        print(f"  raised at {where}", file=sys.stderr)
    if isinstance(exc, ImportError) and "compiler.codegen" in msg:
        print(
            "  the Numba backend is not available; GRADC_BACKEND=interpret runs the "
            "interpreter instead",
            file=sys.stderr,
        )
    if "needs a function returning a float scalar" in msg:
        print("  in gradc ir, --mode vjp or --mode jit handle non-scalar outputs", file=sys.stderr)
    print("  (run with -v for the full traceback)", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `gradc` and `python -m compiler`; returns the exit status."""
    parser = build_parser()
    ns = parser.parse_args(argv)
    configure_from_env()
    if ns.verbose:
        configure(logging.DEBUG if ns.verbose > 1 else logging.INFO)
    try:
        return int(ns.func(ns) or 0)
    except UsageError as exc:
        print(f"gradc {ns.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:
        if ns.verbose:
            traceback.print_exc()
        else:
            _report(exc)
        return 1


__all__ = ["build_parser", "main"]
