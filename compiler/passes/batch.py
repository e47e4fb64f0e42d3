"""Batch many small matrix products into one: the unrolled-loop pattern of shared weights.

A weight used at every step of an unrolled loop (an RNN's `Wh`) gets its gradient as a chain
of adds over the steps, one small product per step; the forward multiplies every step's
input by the same matrix. Both become one BLAS call with a bigger dimension, as a
hand-written backprop does:

- sums of products (the adjoint's accumulation): an add tree over k >= 2 terms
  `transpose(A_i) @ B_i` (2-D) becomes `transpose(concat(A_i, 0)) @ concat(B_i, 0)`, one
  product with K = sum K_i; the mirrored `A_i @ transpose(B_i)` concatenates along axis 1.
  In the same tree, reductions `sum(X_i, axis)` become `sum(concat(X_i), axis)` when that
  exact concatenation is built for a product anyway (the bias gradient next to the weight
  gradient); on their own they would trade k small reductions for a copy of every term;
- shared operands (the forward's input projections, the input gradients `d_t @ Wx^T`):
  k >= 2 products `A_i @ W` with the same `W` (the adjoint's per-use transposes of one
  weight count as one) become `concat(A_i, 0) @ W`, whose row blocks (views) replace the
  products; `W @ B_i` likewise by columns. A product whose other operand depends on another
  one of the group (`h_t @ Wh` needs `h_{t-1} @ Wh`) stays: the batched product needs all
  its operands first, and is placed at the first member with its operands' computations
  hoisted. Non-shared operands that are transposes are left alone: those are weight-
  gradient terms (handled above), and concatenating them would copy the transposed views.

Concatenation order: a sum's terms are ordered by their per-step operand (the delta `B_i`
of `A_i^T B_i`), latest in the graph first. The adjoint emits the steps in reverse, so this
is the forward's order, and the weight gradients, the bias gradient, the input gradients and
the forward projection all concatenate the same values in the same order (cse merges them).

Floating point: a batched product sums each output element over all sum(K_i) terms inside
one GEMM, in BLAS's order, where the graph added k partial products left to right. That is
the same sum reassociated: both orders are within the usual bound (about
sum(K_i) * eps * sum|a||b|) of the exact result, so they agree to rounding, not bit for bit.
The same holds for a batched reduction. Shared-operand batching reassociates nothing (each
output element is still one dot product over the same K), though BLAS may block the bigger
product differently.

Cost: the concatenations copy the operands once (sum(K_i) * (M + N) elements against
2 * sum(K_i) * M * N flops), and every operand of a batched sum stays live until the sum, as
in a hand-written BPTT (its `hs` and `dz` arrays). Adds with broadcasting and products with
other users are left as they are. Like simplify, the pass leaves dead nodes to dce, except
the ones it absorbs (single-use by construction) and the dead readers of those. A batched
reduction can give simplify something new to fold (`reshape(sum)`), which only a second run
of the pipeline would see.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from compiler.ir.graph import Builder, Graph, Node, Value
from compiler.passes.manager import register_pass
from compiler.passes.rewrite import copy_node

_T = (1, 0)  # the axes of a 2-D transpose


def _is_transpose(prod: dict[Value, Node], v: Value) -> bool:
    p = prod.get(v)
    return p is not None and p.op == "transpose" and tuple(p.attrs["axes"]) == _T


# -- sums of products -------------------------------------------------------------------------


@dataclass
class _Term:
    """A batchable leaf of an add tree and the operands that get concatenated."""

    leaf: Value
    operands: tuple[Value, ...]  # (a, b) of a product, (x,) of a reduction
    order: tuple[int, ...]  # operand positions: the concatenation order


@dataclass
class _Group:
    """Terms of one tree that become one product (or one reduction).

    `kind` is "tn" (`transpose(a) @ b`), "nt" (`a @ transpose(b)`) or "sum"; `key` holds
    what the terms must share (for a reduction: axes, keepdims, rank, other summed extents).
    """

    kind: str
    key: tuple
    terms: list[_Term] = field(default_factory=list)

    def axis(self) -> int:
        if self.kind == "sum":
            return self.key[0][0]
        return 0 if self.kind == "tn" else 1

    def cat_key(self, i: int) -> tuple:
        """Operand `i` of every term, in order, and the axis they are concatenated along."""
        return (tuple(t.operands[i] for t in self.terms), self.axis())


@dataclass
class _Tree:
    root: Node
    leaves: list[Value]  # left to right
    groups: list[_Group]


def _term(
    v: Value, prod: dict[Value, Node], pos: dict[Value, int]
) -> tuple[str, tuple, _Term] | None:
    p = prod.get(v)
    if p is None:
        return None
    if p.op == "matmul" and v.ndim == 2:
        a, b = p.inputs
        # The delta (the operand the adjoint produces per step) leads the order, so two
        # products of one delta (x_t^T d_t, h_t^T d_t) concatenate it alike and share it.
        if _is_transpose(prod, a):
            a = prod[a].inputs[0]
            return "tn", (), _Term(v, (a, b), (pos[b], pos[a]))
        if _is_transpose(prod, b):
            b = prod[b].inputs[0]
            return "nt", (), _Term(v, (a, b), (pos[a], pos[b]))
        return None
    if p.op == "sum" and p.attrs["axis"]:
        (x,) = p.inputs
        axis = tuple(p.attrs["axis"])
        # concatenated along the first summed axis, so the other summed extents must agree
        key = (axis, p.attrs["keepdims"], x.ndim, tuple(x.shape[a] for a in axis[1:]))
        return "sum", key, _Term(v, (x,), (pos[x],))
    return None


def _sum_trees(graph: Graph) -> list[_Tree]:
    """The add trees that hold a batchable group, with the groups to apply."""
    live = graph.live_values()
    uses: dict[Value, int] = {v: 1 for v in graph.outputs}
    user: dict[Value, Node] = {}
    for n in graph.nodes:
        if any(v in live for v in n.outputs):
            for v in n.inputs:
                uses[v] = uses.get(v, 0) + 1
                user[v] = n
    prod = graph.producers()
    pos = {v: i - len(graph.inputs) for i, v in enumerate(graph.inputs)}
    pos.update((v, i) for i, n in enumerate(graph.nodes) for v in n.outputs)

    def is_add(n: Node | None) -> bool:
        return n is not None and n.op == "add" and all(v.type == n.out.type for v in n.inputs)

    def interior(v: Value) -> bool:
        """An add folded into the tree above it: its one use is another add of the tree."""
        return is_add(prod.get(v)) and uses.get(v) == 1 and is_add(user.get(v))

    trees = []
    for n in graph.nodes:
        if not is_add(n) or n.out not in live or interior(n.out):
            continue
        leaves: list[Value] = []
        stack = list(reversed(n.inputs))
        while stack:
            v = stack.pop()
            if interior(v):
                stack.extend(reversed(prod[v].inputs))
            else:
                leaves.append(v)
        groups: dict[tuple, _Group] = {}
        for v in leaves:
            found = _term(v, prod, pos) if uses.get(v) == 1 else None
            if found is not None:
                kind, key, term = found
                groups.setdefault((kind, key), _Group(kind, key)).terms.append(term)
        kept = [g for g in groups.values() if len(g.terms) >= 2]
        for g in kept:
            # Descending: the adjoint emits its terms in reverse of the primal order, so this
            # restores the forward's order (its own concatenations of the same values match).
            g.terms.sort(key=lambda t: t.order, reverse=True)
        if kept:
            trees.append(_Tree(n, leaves, kept))

    # Products always batch; a reduction batches only when a product concatenates exactly
    # its operands along its axis (the bias gradient next to the weight gradient): alone it
    # would copy every term to save k - 1 small reductions.
    made = {g.cat_key(i) for t in trees for g in t.groups if g.kind != "sum" for i in (0, 1)}
    for t in trees:
        t.groups = [g for g in t.groups if g.kind != "sum" or g.cat_key(0) in made]
    return [t for t in trees if t.groups]


def _batch_sums(graph: Graph) -> Graph:
    trees = _sum_trees(graph)
    if not trees:
        return graph
    prod = graph.producers()
    absorbed: set[Node] = set()  # interior adds and batched terms: not copied
    for t in trees:
        leaves = set(t.leaves)
        stack = list(t.root.inputs)
        while stack:
            v = stack.pop()
            if v not in leaves:
                absorbed.add(prod[v])
                stack.extend(prod[v].inputs)
        absorbed.update(prod[term.leaf] for g in t.groups for term in g.terms)

    b = Builder()
    env: dict[Value, Value] = {v: b.add_input(v.type) for v in graph.inputs}
    cats: dict[tuple, Value] = {}  # (new operands, axis) -> their concatenation

    def concat(key: tuple) -> Value:
        vals, axis = tuple(env[v] for v in key[0]), key[1]
        if (vals, axis) not in cats:
            cats[vals, axis] = b.add("concatenate", vals, {"axis": axis})
        return cats[vals, axis]

    def emit(g: _Group) -> Value:
        if g.kind == "sum":
            return b.add("sum", [concat(g.cat_key(0))], {"axis": g.key[0], "keepdims": g.key[1]})
        a, c = concat(g.cat_key(0)), concat(g.cat_key(1))
        if g.kind == "tn":
            return b.add("matmul", [b.add("transpose", [a], {"axes": _T}), c])
        return b.add("matmul", [a, b.add("transpose", [c], {"axes": _T})])

    def emit_tree(t: _Tree) -> Value:
        batched = {term.leaf: g for g in t.groups for term in g.terms}
        terms: list[Value] = []
        done: set[int] = set()
        for v in t.leaves:  # a group's value takes the place of its first term
            g = batched.get(v)
            if g is None:
                terms.append(env[v])
            elif id(g) not in done:
                done.add(id(g))
                terms.append(emit(g))
        acc = terms[0]
        for v in terms[1:]:
            acc = b.add("add", [acc, v])
        return acc

    roots = {t.root: t for t in trees}
    for n in graph.nodes:
        if n in roots:
            b.loc, b.tags = n.loc, n.tags
            env[n.out] = emit_tree(roots[n])
            b.loc, b.tags = None, {}
        elif n not in absorbed and all(v in env for v in n.inputs):
            # (a node reading an absorbed value is dead: their one live use is the tree)
            env.update(zip(n.outputs, copy_node(b, n, [env[v] for v in n.inputs])))
    return b.build([env[v] for v in graph.outputs], meta=graph.meta)


# -- products with a shared operand -------------------------------------------------------------


def _shared_group(graph: Graph) -> tuple[str, list[Node]] | None:
    """The first group of >= 2 products sharing an operand that can be batched, if any:
    ("right", [A_i @ W ...]) or ("left", [W @ B_i ...]), in graph order."""
    live = graph.live_values()
    prod = graph.producers()

    def same(v: Value) -> tuple[bool, Value]:
        # the adjoint transposes a weight once per use: its transposes count as one operand
        return (True, prod[v].inputs[0]) if _is_transpose(prod, v) else (False, v)

    fwd = _forward_values(graph)
    cands: dict[tuple, list[Node]] = {}
    for n in graph.nodes:
        if n.op != "matmul" or n.out.ndim != 2 or n.out not in live:
            continue
        a, w = n.inputs
        # a forward product and a backward one never share a batch: the batched product
        # would make the forward's outputs read a cotangent, and vjp splits the two phases
        phase = n.out in fwd
        if not _is_transpose(prod, a):
            cands.setdefault(("right", phase, *same(w)), []).append(n)
        if not _is_transpose(prod, w):
            cands.setdefault(("left", phase, *same(a)), []).append(n)
    keys = [k for k, ns in cands.items() if len(ns) >= 2]
    if not keys:
        return None
    # One sweep for every group: `taint` has bit i set on the values that depend on an
    # included member of group i. A member is included when neither of its operands does:
    # members are met in order, so the ones that could make it circular are already known.
    bit = {k: 1 << i for i, k in enumerate(keys)}
    groups_of: dict[Node, list[tuple]] = {}
    for k in keys:
        for n in cands[k]:
            groups_of.setdefault(n, []).append(k)
    included: dict[tuple, list[Node]] = {k: [] for k in keys}
    taint: dict[Value, int] = {}
    for n in graph.nodes:
        t = 0
        for v in n.inputs:
            t |= taint.get(v, 0)
        for k in groups_of.get(n, ()):
            # (the shared operand is defined before every member, so only the other one
            # can depend on a member)
            if not t & bit[k]:
                included[k].append(n)
                t |= bit[k]
        if t:
            for v in n.outputs:
                taint[v] = t
    ready = [(k[0], ns) for k, ns in included.items() if len(ns) >= 2]
    if not ready:
        return None
    index = {n: i for i, n in enumerate(graph.nodes)}
    return min(ready, key=lambda kn: index[kn[1][0]])


def _forward_values(graph: Graph) -> set[Value]:
    """Values the primal outputs of a joint graph depend on (its forward phase); empty for a
    graph that is not a joint graph (no `n_primal_outputs` in its meta)."""
    n_primal = graph.meta.get("n_primal_outputs")
    if n_primal is None:
        return set()
    prod = graph.producers()
    out: set[Value] = set()
    stack = list(graph.outputs[:n_primal])
    while stack:
        v = stack.pop()
        if v in out:
            continue
        out.add(v)
        if v in prod:
            stack.extend(prod[v].inputs)
    return out


def _batch_shared_once(graph: Graph) -> Graph:
    found = _shared_group(graph)
    if found is None:
        return graph
    side, members = found
    member_set = set(members)
    prod = graph.producers()
    i_other = 0 if side == "right" else 1  # the operand that differs between members
    axis = i_other  # the A_i by rows, the B_i by columns
    shared = members[0].inputs[1 - i_other]
    others = [m.inputs[i_other] for m in members]
    if len(set(others)) == len(others):
        # the same operands may be concatenated already (by the sums above, for the
        # gradient of a weight): take that order, so that cse merges the two
        for n in graph.nodes:
            if n.op == "concatenate" and n.attrs["axis"] == axis and set(n.inputs) == set(others):
                by_other = dict(zip(others, members))
                members = [by_other[v] for v in n.inputs]
                break
    deps = [prod[v] for m in members for v in (m.inputs[i_other], shared) if v in prod]

    b = Builder()
    env: dict[Value, Value] = {v: b.add_input(v.type) for v in graph.inputs}

    def emit_group() -> None:
        b.loc, b.tags = members[0].loc, members[0].tags
        cat = b.add("concatenate", [env[m.inputs[i_other]] for m in members], {"axis": axis})
        if side == "right":  # the A_i stacked by rows; each product is a block of rows
            p = b.add("matmul", [cat, env[shared]])
        else:  # the B_i side by side; each product is a block of columns
            p = b.add("matmul", [env[shared], cat])
        off = 0
        for m in members:
            rows, cols = m.out.shape
            if side == "right":
                index, off = ((off, 1, rows), (0, 1, cols)), off + rows
            else:
                index, off = ((0, 1, rows), (off, 1, cols)), off + cols
            env[m.out] = b.add("slice", [p], {"index": index})
        b.loc, b.tags = None, {}

    # Copy in the original order, except that the batched product is placed at its first
    # member, with what its operands need (and only that) hoisted in front of it.
    done: set[Node] = set()
    for start in graph.nodes:
        stack = [start]
        while stack:
            n = stack[-1]
            if n in done:
                stack.pop()
                continue
            need = deps if n in member_set else [prod[v] for v in n.inputs if v in prod]
            pending = [p for p in need if p not in done]
            if pending:
                stack.extend(reversed(pending))
                continue
            stack.pop()
            if n in member_set:
                emit_group()
                done.update(member_set)
            else:
                env.update(zip(n.outputs, copy_node(b, n, [env[v] for v in n.inputs])))
                done.add(n)
    return b.build([env[v] for v in graph.outputs], meta=graph.meta)


def _batch_shared(graph: Graph) -> Graph:
    # one group at a time, each on the graph the previous one made: batching two groups
    # at once could make each need the other's operands (a cycle no single sweep sees)
    while True:
        new = _batch_shared_once(graph)
        if new is graph:
            return graph
        graph = new


@register_pass("batch")
def batch(graph: Graph) -> Graph:
    """Batch sums of small products, and products sharing an operand, into single products."""
    # sums first: their products then no longer look like products of a shared delta
    return _batch_shared(_batch_sums(graph))
