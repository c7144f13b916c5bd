"""Building k2 FSAs from arc lists (the lexicon, the denominator phone LM and H are written as arcs)."""

from typing import Mapping, Optional, Sequence, Tuple

import k2
import torch


def fsa_from_arcs(
    arcs: Sequence[Tuple[int, int, int, float]],
    final: int,
    aux_labels: Optional[Sequence[int]] = None,
    attributes: Optional[Mapping[str, Sequence[int]]] = None,
) -> k2.Fsa:
    """A k2 FSA from ``(src, dest, label, score)`` arcs, arc-sorted, without a round trip through text.

    Args:
        arcs: one tuple per arc, in any order; ``score`` in log base e; arcs into ``final`` carry
            label -1 (k2's convention for final arcs).
        final: the final state; it must be the highest state number and have no arcs leaving it.
        aux_labels: output label of each arc (same order as ``arcs``; -1 on the final arcs), or
            None for an acceptor.
        attributes: further int32 arc attributes by name, each in the order of ``arcs``.

    Returns:
        k2 ``Fsa`` with ``final + 1`` states, arcs sorted by source state then label, ``aux_labels``
        int32 when given.

    Raises:
        ValueError: no arc enters ``final``, an arc leaves it or passes it, or the labels disagree
            with the final-arc convention.
    """
    if not arcs:
        raise ValueError("an FSA needs at least one arc")
    if aux_labels is not None and len(aux_labels) != len(arcs):
        raise ValueError(f"{len(aux_labels)} aux_labels for {len(arcs)} arcs")
    for name, values in (attributes or {}).items():
        if len(values) != len(arcs):
            raise ValueError(f"{len(values)} values of {name} for {len(arcs)} arcs")
    order = sorted(range(len(arcs)), key=lambda i: arcs[i][0])  # k2 wants arcs grouped by source state
    table = torch.tensor([arcs[i][:3] for i in order], dtype=torch.int32).reshape(-1, 3)
    scores = torch.tensor([float(arcs[i][3]) for i in order], dtype=torch.float32)
    if int(table[:, :2].max()) != final or bool((table[:, 0] == final).any()):
        raise ValueError(f"state {final} must be the highest state and have no arcs leaving it")
    if not bool(((table[:, 1] == final) == (table[:, 2] == -1)).all()):
        raise ValueError(f"exactly the arcs into the final state {final} carry label -1")
    fsa = k2.Fsa(torch.cat([table, scores.view(torch.int32).unsqueeze(1)], dim=1))
    if aux_labels is not None:
        fsa.aux_labels = torch.tensor([aux_labels[i] for i in order], dtype=torch.int32)
    for name, values in (attributes or {}).items():
        setattr(fsa, name, torch.tensor([values[i] for i in order], dtype=torch.int32))
    return k2.arc_sort(fsa)


__all__ = ["fsa_from_arcs"]
