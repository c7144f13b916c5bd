"""Phonetic questions for decision-tree clustering: automatic (top-down clustering of the phones'
own statistics, as Kaldi's ``cluster-phones``) and hand-written phone classes read from a file.

Class file format (``lexicon/arpabet_classes.txt``): one class per line, ``NAME: PHONE PHONE ...``;
``#`` starts a comment; blank lines are ignored; phones absent from the phone set are dropped.
"""

from pathlib import Path
from typing import Dict, FrozenSet, List, Sequence, Union

import numpy as np

from hybrid_asr.errors import InputError
from hybrid_asr.hmm.tree_stats import GaussStats, sum_stats

Question = FrozenSet[str]


def _ll(group: Sequence[str], stats: Dict[str, GaussStats], dim: int) -> float:
    return sum_stats((stats[p] for p in group), dim).log_likelihood()


def _two_means(phones: List[str], stats: Dict[str, GaussStats], dim: int, max_iter: int = 20):
    """Split ``phones`` in two, maximizing the summed log-likelihood of the two pooled Gaussians.

    Starts from the two phones with the most distant means, then moves single phones across while
    that increases the objective (a coordinate-ascent form of 2-means).
    """
    means = np.stack([stats[p].sum / max(stats[p].count, 1e-9) for p in phones])
    dist = ((means[:, None, :] - means[None, :, :]) ** 2).sum(-1)
    i, j = np.unravel_index(np.argmax(dist), dist.shape)
    side = {p: int(np.sum((means[k] - means[j]) ** 2) < np.sum((means[k] - means[i]) ** 2))
            for k, p in enumerate(phones)}
    for _ in range(max_iter):
        moved = False
        for p in phones:
            a = [q for q in phones if side[q] == 0]
            b = [q for q in phones if side[q] == 1]
            if (side[p] == 0 and len(a) == 1) or (side[p] == 1 and len(b) == 1):
                continue
            before = _ll(a, stats, dim) + _ll(b, stats, dim)
            side[p] = 1 - side[p]
            a2 = [q for q in phones if side[q] == 0]
            b2 = [q for q in phones if side[q] == 1]
            if _ll(a2, stats, dim) + _ll(b2, stats, dim) > before + 1e-6:
                moved = True
            else:
                side[p] = 1 - side[p]
        if not moved:
            break
    return [p for p in phones if side[p] == 0], [p for p in phones if side[p] == 1]


def cluster_phones(stats: Dict[str, GaussStats], phones: Sequence[str]) -> List[Question]:
    """Automatic questions: every node of a binary top-down clustering of the phones.

    Each phone is represented by the pooled statistics of all its frames; a set is split in two
    by :func:`_two_means` and both halves are split again until single phones remain (Kaldi
    ``cluster-phones``; Young, Odell & Woodland 1994 use hand-made questions instead). Phones
    without statistics are left out.

    Args:
        stats: per-phone statistics.
        phones: phones to cluster.

    Returns:
        The node sets, largest first, without the full set (it is no question).
    """
    present = [p for p in phones if p in stats and stats[p].count > 0]
    if not present:
        return []
    dim = len(stats[present[0]].sum)
    out: List[Question] = []
    todo = [present]
    while todo:
        group = todo.pop()
        if len(group) < 2:
            continue
        a, b = _two_means(group, stats, dim)
        for half in (a, b):
            out.append(frozenset(half))
            todo.append(half)
    return sorted(set(out), key=lambda q: (-len(q), sorted(q)))


def read_phone_classes(path: Union[str, Path], phones: Sequence[str]) -> List[Question]:
    """Read hand-written phone classes (format in the module docstring).

    Args:
        path: class file.
        phones: the phone set; class members outside it are dropped, empty classes skipped.

    Raises:
        InputError: missing file, or a line without ``NAME:``.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "phone class file does not exist")
    known = set(phones)
    out: List[Question] = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, members = line.partition(":")
        if not sep or not name.strip():
            raise InputError(path, "expected 'NAME: PHONE PHONE ...'", lineno)
        q = frozenset(p for p in members.split() if p in known)
        if q:
            out.append(q)
    return out
