"""Generate docs/ops.md, the op table, from the primitive registry.

python -m compiler.docgen            rewrite docs/ops.md
python -m compiler.docgen --check    exit 1 if docs/ops.md is out of date
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from compiler.primitives import OPS
from compiler.primitives.registry import Kind, Lowering, OpDef, ScalarExpr

DEFAULT_PATH = Path(__file__).resolve().parents[1] / "docs" / "ops.md"

_KIND_TITLES = {
    Kind.ELEMENTWISE: "Elementwise (broadcasting; fused into loop nests)",
    Kind.REDUCE: "Reductions",
    Kind.SHAPE: "Shape and view ops",
    Kind.INDEX: "Indexing, scatter and concatenation",
    Kind.LINALG: "Linear algebra (library calls)",
    Kind.SCAN: "Scans, products and sorting (NumPy calls from the driver)",
    Kind.CONST: "Constants",
    Kind.LOOP: "Loops (a body graph run many times; see the user guide)",
    Kind.FUSED: "Fusion groups (made by the `fuse` pass after autodiff; one loop nest)",
}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


_LOWERING_WORDS = {
    Lowering.REDUCE: "loop accumulator",
    Lowering.LIBRARY: "library call",
    Lowering.VIEW: "view",
    Lowering.CUSTOM: "renderer",
}


def _codegen(op: OpDef) -> str:
    """The lowering column: the scalar expression, else the lowering kind and its name."""
    if isinstance(op.codegen, ScalarExpr):
        return f"`{_cell(op.codegen.template)}`"  # routing to a library: see routing.md
    return f"{_LOWERING_WORDS[op.lowering]} `{op.codegen}`"


def _gradient(op: OpDef) -> str:
    if not op.differentiable:
        return f"none: {_cell(op.grad_doc)}" if op.grad_doc else "none"
    return _cell(op.grad_doc) or "(undocumented)"


def _signature(op: OpDef) -> str:
    """`2 · axis, keepdims`: operand count and attribute names, read from the op's samples."""
    if op.samples is None:
        return "-"
    import numpy as np

    samples = op.samples(np.random.default_rng(0))
    if not samples:
        return "-"
    arity = sorted({len(s.args) for s in samples})
    attrs = sorted({k for s in samples for k in s.attrs})
    n = "/".join(str(a) for a in arity)
    return f"{n}" + (f" · {', '.join(attrs)}" if attrs else "")


# NumPy/SciPy functions that need no record of their own: how the tracer lowers them
_COMPOSED = [
    (
        "`np.einsum` (any subscripts, `...`, repeated indices, implicit output)",
        "diagonals for repeated indices, sums for private indices, then the `np.einsum_path` "
        "(greedy) pair order as transpose + reshape + batched `matmul`",
    ),
    ("`np.tensordot`, `np.inner`, `np.dot` (N-d)", "`einsum`"),
    ("`np.outer`, `np.kron`, `np.vdot`", "reshapes, broadcasting `multiply`, `sum`"),
    ("`np.linalg.det`", "`det_sign * exp(logabsdet)`"),
    (
        "`np.linalg.norm` (vector: None/2, 1, inf, -inf, 0, p; matrix: 'fro', 1, -1, inf, -inf, "
        "2, -2, 'nuc'; `axis`, `keepdims`)",
        "`sqrt(sum(x*x))` (gradient nan at x = 0), `abs` + `sum`/`max`/`min`, singular values",
    ),
    (
        "`np.linalg.pinv`, `np.linalg.lstsq`",
        "`svd` with NumPy's cutoff (`rcond`); `lstsq` residuals take the full-rank shape",
    ),
    ("`np.linalg.eigvalsh`, `np.linalg.svd(compute_uv=False)`", "`eigh`, `svd`"),
    (
        "`scipy.linalg.cho_factor` / `cho_solve`, `scipy.linalg.cholesky` (upper by default)",
        "`cholesky`, two `solve_triangular` (the unused triangle holds zeros)",
    ),
    ("`np.trace`, `np.diag`, `np.diagonal`", "a strided slice of the flattened matrix"),
    ("`np.var`, `np.std` (`ddof`)", "mean of squared deviations (as NumPy computes them)"),
    (
        "`np.average` (`weights`), `np.ptp`, `np.diff` (`n`, `prepend`, `append`)",
        "`sum`, `max - min`, slices and `subtract`",
    ),
    ("`np.nansum`, `np.nanmean`", "`where(x == x, x, 0)`"),
    (
        "`np.logaddexp.reduce`, `scipy.special.logsumexp` (`b`, `axis`, `keepdims`), "
        "`softmax`, `log_softmax`",
        "max-shifted `exp`/`sum`/`log` (the shift cancels in the gradient)",
    ),
    (
        "`np.add.reduce`/`accumulate`, `np.multiply.reduce`/`accumulate`, "
        "`np.maximum.reduce`, `np.minimum.reduce`",
        "`sum`, `cumsum`, `prod`, `cumprod`, `max`, `min`",
    ),
    ("`sum`/`mean`/`max`/`min` with `where=` and `initial=`", "`where` before the reduction"),
    (
        "`np.sort`, `np.take_along_axis`, `np.put_along_axis`, `np.partition`, `np.argpartition`",
        "`argsort` and one `take`/`scatter` at flat indices: the gradient goes back through the "
        "permutation; `partition` returns the sorted array (a valid partition)",
    ),
    ("`np.tril`, `np.triu`", "`where` with a constant triangular mask"),
    (
        "`np.flip`, `np.roll`, `np.tile`, `np.repeat`, `np.pad` (constant), `np.split`, "
        "`np.array_split`, `np.moveaxis`, `np.meshgrid`, `np.column_stack`, `np.dstack`, "
        "`np.atleast_*d`",
        "slices (views), `concatenate`, `broadcast_to` + `reshape`, `set_slice`",
    ),
    ("`np.deg2rad`, `np.rad2deg`, `np.round(decimals=0)`", "`multiply`, `rint`"),
    (
        "`np.array` / `np.asarray` of (nested) lists of traced values, NumPy functions called on "
        "such lists",
        "`concatenate` of reshaped items (NumPy's own shape and dtype rules)",
    ),
    (
        "`x[mask]` (traced boolean mask) in a reduction, `x[mask] = v`, `x[mask] += v`",
        "`where(mask, ...)` before the reduction / as the update",
    ),
    ("`rng.*` draws, `np.random.*`", "graph inputs filled from the real generator at each call"),
]

# what gradc does not support, and what to write instead
_UNSUPPORTED = [
    ("Python control flow on traced values (`if x > 0`)", "`np.where(cond, a, b)`, `np.clip`"),
    (
        "`x[mask]` with a traced mask, other than in a reduction or an assignment",
        "`np.where(mask, x, 0)`; `np.sum(mask)` for the count",
    ),
    ("`np.nonzero`, `np.where(cond)` with one argument, `np.unique`", "masks and `np.where`"),
    ("`np.linalg.svd(full_matrices=True)` of a non-square matrix", "`full_matrices=False`"),
    ("`np.linalg.qr` of a wide matrix (m < n)", "QR-factor the transpose"),
    (
        "`np.linalg.eig`, `np.linalg.eigvals` (non-symmetric)",
        "`np.linalg.eigh` for symmetric matrices",
    ),
    (
        "`np.pad` modes other than 'constant'",
        "`np.concatenate` of slices (`x[..., :1]` for 'edge')",
    ),
    (
        "`rng.<draw>` with traced parameters (other than `normal`, `uniform`)",
        "draw standard noise and transform it, or draw outside and pass it in",
    ),
    ("`rng.shuffle` (in place)", "`x[rng.permutation(len(x))]`"),
    (
        "random draws inside a `scan`/`while_loop` step (traced once, so drawn once)",
        "draw the noise for every step before the loop and pass it in as `xs`",
    ),
    ("`float(x)`, `x.item()`, `math.*` on traced values", "`np.*` on 0-d arrays"),
    ("`scipy.special.logsumexp(return_sign=True)`", "with positive `b` the sign is 1"),
]


def _extra_sections() -> list[str]:
    lines = [
        "",
        "## NumPy and SciPy functions built from the ops above",
        "",
        "These have no record of their own; the tracer lowers them (`compiler/trace/*_api.py`), "
        "and their gradients follow from the ops'.",
        "",
        "| function | lowered to |",
        "|---|---|",
    ]
    lines += [f"| {_cell(f)} | {_cell(how)} |" for f, how in _COMPOSED]
    lines += [
        "",
        "## Gradients at kinks and degenerate points",
        "",
        "- Piecewise-constant ops (`sign`, `floor`, `ceil`, `trunc`, `rint`, `round`, "
        "`floor_divide`, comparisons, `arg*`) have zero gradient, 0 also at the jumps.",
        "- `abs` at 0: 0. `maximum`/`minimum`/`fmax`/`fmin`/`clip` ties: the first operand. "
        "`max`/`min` reductions: tied extrema share the gradient equally.",
        "- `sqrt`, `cbrt`, `arcsin`/`arccos` at the ends of their domain, `norm` at 0: inf or "
        "nan, as NumPy's arithmetic gives.",
        "- `eigh`/`svd` at repeated eigenvalues/singular values: the 1/(w_j - w_i) terms of "
        "exactly equal pairs are dropped (exact for losses of the values and of the spans of "
        "repeated vectors; no gradient is right for a particular basis of such a span).",
        "- `cholesky`, `eigh` read the lower triangle and `solve_triangular` its triangle, as "
        "NumPy/SciPy do: the gradient lives on that triangle.",
        "- `cumprod`'s gradient divides by x (nan at x = 0); `prod`'s is exact at zeros.",
        "- `sort`: the gradient follows the permutation (ties keep their stable order).",
        "",
        "## Not supported, and what to write instead",
        "",
        "| not supported | write instead |",
        "|---|---|",
    ]
    lines += [f"| {_cell(f)} | {_cell(how)} |" for f, how in _UNSUPPORTED]
    return lines


def render_ops() -> str:
    """The text of docs/ops.md for the ops registered now."""
    lines = [
        "<!-- Generated by `python -m compiler.docgen` from the primitive registry. "
        "Do not edit by hand. -->",
        "",
        "# Op reference",
        "",
        f"gradc has {len(OPS)} primitive ops. Each is one `OpDef` record in "
        "`compiler/primitives/`, holding its shape rule, NumPy reference implementation, "
        "VJP and JVP rules and how it lowers. The **gradient** column is the VJP convention: "
        "given the output cotangent `ct`, what each operand receives (operands in order, "
        "separated by commas). The autodiff driver, not the rule, sums over broadcast axes and "
        "across fan-out, so rules are written for same-shape operands. "
        "**Cost** guides the planner: `FREE` views and constants, `CHEAP` arithmetic is "
        "recomputed rather than stored, `TRANSCENDENTAL` is recomputed only to save memory, "
        "`EXPENSIVE` is always stored. The **lowering** column is the op's `OpDef.lowering`: a "
        "scalar expression inside loop kernels (`{0}`, `{1}` are operands and `{T}` the "
        "kernel's dtype; where a library call is preferred instead is in "
        "[routing.md](routing.md)), a loop accumulator, a library call of the reference "
        "implementation from the driver, a view, or a renderer of its own in codegen. "
        "**operands · attrs** are read from the op's test samples.",
        "",
        "See [ir.md](ir.md) for the text format and how the ops appear in a dump.",
    ]
    for kind, title in _KIND_TITLES.items():
        ops = sorted((op for op in OPS.values() if op.kind == kind), key=lambda o: o.name)
        if not ops:
            continue
        lines += [
            "",
            f"## {title}",
            "",
            "| op | operands · attrs | gradient (VJP) | cost | lowering |",
            "|---|---|---|---|---|",
        ]
        for op in ops:
            lines.append(
                f"| `{op.name}` | {_signature(op)} | {_gradient(op)} | {op.cost.name} "
                f"| {_codegen(op)} |"
            )
    lines += _extra_sections()
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m compiler.docgen", description=__doc__.split("\n")[0]
    )
    p.add_argument("--check", action="store_true", help="exit 1 if the file is out of date")
    p.add_argument("-o", "--output", type=Path, default=DEFAULT_PATH)
    ns = p.parse_args(argv)
    text = render_ops()
    if ns.check:
        current = ns.output.read_text() if ns.output.exists() else ""
        if current != text:
            print(f"{ns.output} is out of date: run `python -m compiler.docgen`", file=sys.stderr)
            return 1
        print(f"{ns.output} is up to date")
        return 0
    ns.output.parent.mkdir(parents=True, exist_ok=True)
    ns.output.write_text(text)
    print(f"wrote {ns.output} ({len(OPS)} ops)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
