"""Test helper: enumerate the paths of a small k2 Fsa (depth-first, bounded length)."""

from typing import List, Optional, Tuple

import k2


def enumerate_paths(fsa: k2.Fsa, max_arcs: int, attr: Optional[str] = "aux_labels",
                    exact_arcs: Optional[int] = None) -> List[Tuple[Tuple[int, ...], Tuple[int, ...], float]]:
    """All successful paths with at most ``max_arcs`` arcs (the final -1 arc included).

    Returns ``(labels without -1, attr values without 0/-1, total score)`` per path. With
    ``exact_arcs``, only paths of exactly that many arcs (final arc included).
    """
    arcs = fsa.arcs.values()[:, :3].tolist()
    scores = fsa.scores.tolist()
    aux = None
    if attr is not None and hasattr(fsa, attr):
        values = getattr(fsa, attr)
        if isinstance(values, k2.RaggedTensor):
            aux = [values[i].tolist() for i in range(values.dim0)]
        else:
            aux = [[v] for v in values.tolist()]
    by_src = {}
    for i, (s, d, l) in enumerate(arcs):
        by_src.setdefault(s, []).append((i, d, l))
    out = []

    def dfs(state, labels, outs, score, depth):
        if depth > max_arcs:
            return
        for i, dst, label in by_src.get(state, []):
            o = outs + ([v for v in aux[i] if v > 0] if aux else [])
            if label == -1:
                if exact_arcs is None or depth + 1 == exact_arcs:
                    out.append((tuple(labels), tuple(o), score + scores[i]))
            else:
                dfs(dst, labels + [label], o, score + scores[i], depth + 1)

    dfs(0, [], [], 0.0, 0)
    return out
