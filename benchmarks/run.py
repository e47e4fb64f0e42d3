"""Benchmark gradc against hand-written NumPy backprop, JAX and PyTorch.

    python benchmarks/run.py [--only NAME ...] [--repeat N] [--quick] [--no-gradc]

Thread counts must be fixed before NumPy, Numba, JAX or torch is imported, so this entry point
only parses arguments and sets the environment; the measuring lives in ``harness.py``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def thread_env(threads: int) -> dict[str, str]:
    """Environment that caps BLAS (OpenBLAS/MKL/OpenMP), Numba, gradc's own threads and XLA at
    ``threads``."""
    xla = os.environ.get("XLA_FLAGS", "")
    if "intra_op_parallelism_threads" not in xla:
        multi = "true" if threads > 1 else "false"
        xla = (
            f"{xla} --xla_cpu_multi_thread_eigen={multi} intra_op_parallelism_threads={threads}"
        ).strip()
    n = str(threads)
    return {
        "OMP_NUM_THREADS": n,
        "OPENBLAS_NUM_THREADS": n,
        "MKL_NUM_THREADS": n,
        "NUMBA_NUM_THREADS": n,
        "GRADC_THREADS": n,
        "XLA_FLAGS": xla,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="+", metavar="NAME", help="workloads to run (default: all)")
    p.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="timed samples per measurement (default 11, or 3 with --quick)",
    )
    p.add_argument(
        "--quick", action="store_true", help="fewer and shorter samples, smaller bandwidth array"
    )
    p.add_argument("--no-gradc", action="store_true", help="skip gradc (NumPy/JAX/torch only)")
    p.add_argument(
        "--no-subprocess",
        action="store_true",
        help="skip the cold and warm-disk-cache first-call timings in new processes",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=os.cpu_count() or 1,
        help="threads for BLAS, Numba, gradc, XLA and torch (default: all cores)",
    )
    p.add_argument("--child", metavar="NAME", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.repeat is None:
        args.repeat = 3 if args.quick else 11
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.update(thread_env(args.threads))
    sys.path[:0] = [str(HERE), str(ROOT)]  # workloads/harness, and the compiler package
    import harness

    if args.child:
        return harness.child(args.child)
    return harness.run(args)


if __name__ == "__main__":
    sys.exit(main())
