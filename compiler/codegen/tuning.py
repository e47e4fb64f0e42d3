"""Measured thresholds of the Python driver: when a loop runs in parallel, and when a small
loop runs as NumPy calls before its kernel is worth compiling."""

from __future__ import annotations

# `prange` on the outer loop, measured on 2 cores (numba 0.68, omp layer, with
# OMP_WAIT_POLICY=passive, see compile.py): a parallel region costs ~40-60 us to wake the
# pool, so a memory-bound `x*x + x` loop breaks even near 2**20 elements (149 -> 141 us;
# 1.31 -> 0.76 ms at 2**22) and a libm-bound `sin(x)*x` loop near 2**14 (129 -> 110 us at
# 2**14, 35 -> 18 ms at 2**22).
PARALLEL_MIN = 1 << 20
PARALLEL_MIN_LIBM = 1 << 14

# Loops over fewer elements than SMALL_LOOP run as one NumPy call per op at first: nothing
# to compile (a kernel costs ~0.15-0.3 s to compile; the NumPy calls ~1.5 us per op per call
# more than the kernel's ~2 us, e.g. ~10 us for a 4-op body on 2560 elements). Each such
# loop switches to its kernel (compiled on that call) once the stage has been called often
# enough that the NumPy calls would have cost about one compile (rent, then buy: never more
# than twice the better choice): after COMPILE_S / (OP_S * ops * call sites of the kernel)
# calls, or at once when the kernel is already compiled in this process (see compile.py).
# The mlp's softmax cross-entropy head (6 bodies on 256 x 10) compiles nothing on its first
# call that way, and switches after ~10-40 thousand calls; 64 residual layers of a small
# width share one backward kernel, which switches after a few hundred. The switch compiled
# on the caller's call (0.85-2.8 s, not 0.2 s, on a loaded 2-core machine), so the pipeline
# no longer uses it: its NumPy tier is the rent, and its compiled tier, built in the
# background, binds every small loop to its kernel (docs/tiers.md). This rule remains for
# stages built outside the pipeline (`compile_graph(eager=False)`: tools and tests).
SMALL_LOOP = 1 << 12
COMPILE_S = 0.2
OP_S = 1.5e-6


def hot_after(ops: int, sites: int) -> int:
    """Calls of the stage after which a small loop switches to its kernel (see above)."""
    return max(1, int(COMPILE_S / (OP_S * max(ops, 1) * max(sites, 1))))
