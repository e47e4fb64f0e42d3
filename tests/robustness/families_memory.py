"""Program families about NumPy's memory semantics (mixed into programs._Gen).

- `relayout`: writes through reshapes and ravels of transposed, strided and F-ordered arrays
  (a view or a copy depending on the strides: `x.T.reshape(-1)` copies, `x.T.T.ravel()` does
  not, and `(x.T * 1.0)` is F-ordered), and writes into the base read back through them;
- `alias`: a second name for a scalar or an array, then augmented assignment on one of them
  (a NumPy scalar is immutable, so only the assigned name changes; an array is shared);
- `scalar_mix`: Python floats and NumPy scalars (arguments, literals, full reductions) through
  ufuncs with float32 and float64 arrays (`np.exp(s)` of a Python float is a strong float64).

Each family writes its lines and registers every name whose value the program can observe.
"""

from __future__ import annotations

import numpy as np


class MemoryFamilies:
    """Family methods; the host class provides the generator helpers they call."""

    # -- writes through reshapes and ravels --------------------------------------------------
    def relayout(self) -> bool:
        a = self.floats(lambda v: v.ndim >= 1)
        if a is None:
            return False
        x, nd = a.name, a.ndim
        t, u = self.fresh(), self.fresh()
        inits = [f"{t} = {x}.copy()", f"{t} = {x} * 1.0", f"{t} = np.copy({x})"]
        if nd >= 2:
            inits += [
                f"{t} = {x}.T * 1.0",  # F-ordered: NumPy keeps the operand's layout
                f"{t} = np.copy({x}.T)",  # np.copy keeps it too (order='K')
                f"{t} = ({x}.T * 1.0).T",  # C-ordered again
                f"{t} = np.zeros_like({x}.T) + 1.0",
                f"{t} = {x}.T.copy()",  # ndarray.copy is C-ordered
            ]
        init = self.choice(inits)
        srcs = [t, f"{t}[::2]", f"{t}[::-1]", f"{t}[1:]"]
        if nd >= 2:
            srcs += [
                f"{t}.T",
                f"{t}[:, ::2]",
                f"{t}[:, 1:]",
                f"{t}[:1]",
                f"np.swapaxes({t}, 0, -1)",
            ]
        if nd >= 3:
            perm = tuple(self.r.perm(range(nd)))
            srcs += [f"{t}.transpose({perm!r})", f"{t}[:, :, ::2]"]
        src = self.choice(srcs)
        forms = [
            f"{src}.reshape(-1)",
            f"{src}.ravel()",
            f"np.ravel({src})",
            f"np.reshape({src}, -1)",
        ]
        if nd >= 2:
            forms += [f"{src}.reshape({src}.shape[0], -1)", f"{src}.reshape(-1, {src}.shape[-1])"]
        forms += [f"{src}.flatten()", f"np.expand_dims({src}, 0)", f"{src}[None]"]
        form = self.choice(forms)
        write = self.choice(["first", "scale", "add", "fill", "base"])
        lines = [init, f"{u} = {form}"]
        if write == "first":
            lines.append(f"{u}[0] = 5.0")
        elif write == "scale":
            lines.append(f"{u} *= 2.0")
        elif write == "add":
            lines.append(f"{u}[1:] += 1.5")
        elif write == "fill":
            lines.append(f"{u}[...] = np.tanh({u}) * 0.5")
        else:  # a write into the base, read back through the reshape
            lines.append(f"{t}[...] += 1.25")
        return self.try_lines(lines, u, also=(t,))

    # -- aliases and augmented assignment ----------------------------------------------------
    def alias(self) -> bool:
        a = self.floats()
        if a is None:
            return False
        x = a.name
        t, u = self.fresh(), self.fresh()
        scalars = [v for v in self.vars if v.scalar and v.is_float]
        sources = [f"{x}.sum()", f"np.max({x})", f"np.mean({x})", f"{x}.copy()", f"{x} * 1.0"]
        if a.ndim:
            sources += [f"{x}[{', '.join('0' for _ in range(a.ndim))}]"]  # a NumPy scalar
        if a.ndim >= 1:
            sources += [f"{x}[1:] * 1.0"]
        if a.ndim == 1:
            sources += [f"{x} @ {x}"]  # a 0-d matmul result is a scalar too
        if scalars and self.flag():
            src = self.choice(scalars).name  # a scalar argument: never changed in place
        else:
            src = self.choice(sources)
        op = self.choice(["+=", "-=", "*=", "/="])
        rhs = self.choice(["1.0", "2.0", "0.5", "np.float64(1.5)"])
        lines = [f"{t} = {src}", f"{u} = {t}", f"{t} {op} {rhs}"]
        if self.flag():
            lines.append(f"{u} *= 3.0")  # and the other name in turn
        return self.try_lines(lines, t, also=(u,))

    # -- Python and NumPy scalars through ufuncs ---------------------------------------------
    def scalar_mix(self) -> bool:
        a = self.floats()
        if a is None:
            return False
        x = a.name
        scalars = [v.name for v in self.vars if v.scalar and v.is_float]
        s = self.choice(scalars + ["0.5", "np.float64(0.5)", f"{x}.sum()", "np.float32(0.5)"])
        f = self.choice(
            ["np.exp({s})", "np.tanh({s})", "np.abs({s})", "np.sqrt({s} * {s} + 1.0)",
             "np.maximum({s}, 0.25)", "np.multiply({s}, 2.0)", "({s} * 2.0)", "{s}",
             "np.negative({s})", "np.square({s})", "np.add({s}, 1.0)", "-{s}", "abs({s})"]
        ).format(s=s)  # fmt: skip
        expr = self.choice(
            [f"{x} * {f}", f"{f} + {x}", f"{x} - {f} * {x}", f"np.multiply({x}, {f})"]
        )

        def kinks(ns):  # abs has its kink at 0, maximum(s, 0.25) at 0.25
            v = np.asarray(eval(s, ns), dtype=np.float64)
            return float(min(np.min(np.abs(v)), np.min(np.abs(v - 0.25))))

        return self.assign(expr, kinks)
