"""Phonetic decision tree: context-dependent HMM states (triphone states) -> senones (pdf-ids).

Building (Young, Odell & Woodland 1994; Kaldi ``build-tree``, "How decision trees are used in
Kaldi"):

1. One root per central phone; each root holds every ``(left, phone, right, state)`` seen.
2. Greedy top-down splitting: over all current leaves, take the question with the largest gain in
   log-likelihood (single diagonal Gaussian per node, :class:`GaussStats`), subject to both
   children having at least ``min_count`` frames, until ``num_leaves`` leaves exist or no split
   gains more than ``min_gain``. A question asks whether the left context, the right context
   (phone sets) or the HMM state (state sets, so one tree per phone is shared across its states)
   is in a set.
3. Bottom-up merging: within each central phone (except silence), the pair of leaves whose merge
   loses the least log-likelihood is merged while that loss is below ``merge_threshold`` (default:
   the split threshold ``min_gain``, as Kaldi's ``--cluster-thresh -1``). Merged leaves share one
   senone.

Silence phones (SIL, SPN) are context-independent: their root is split by HMM state only.
Every triphone, seen in training or not, reaches exactly one leaf.
"""

import heapq
import itertools
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, FrozenSet, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from hybrid_asr.bounds import bounded, check_bounds
from hybrid_asr.errors import InputError
from hybrid_asr.hmm.questions import cluster_phones
from hybrid_asr.hmm.topology import HmmTopology
from hybrid_asr.hmm.tree_stats import Context, GaussStats, accumulate_tree_stats, sum_stats
from hybrid_asr.utils import write_text_atomic

log = logging.getLogger(__name__)

GAIN_TIE = 1e-9
"""Relative difference below which two split gains are a tie (:func:`best_split`)."""

POSITIONS = {"L": 0, "R": 2, "S": 3}
"""Question positions: index into a :data:`Context` tuple (left phone, right phone, HMM state)."""


@dataclass(frozen=True)
class TreeConfig:
    """Tree-building settings.

    Attributes:
        num_leaves: target number of leaves before merging (the senone budget).
        min_count: minimum frames in each child of a split.
        min_gain: minimum log-likelihood gain (nats) of a split (Kaldi ``--thresh``, default 300).
        merge: run the bottom-up merge step.
        merge_threshold: largest log-likelihood loss (nats) of a merge; None means ``min_gain``.
        frame_subsampling_factor: f; statistics from every f-th frame only (0, f, 2f, ...), as
            Kaldi's ``acc-tree-stats --frame-subsampling-factor`` for a chain model's tree,
            whose model sees one frame in f. The thresholds count those frames.
    """

    num_leaves: int = bounded(400, ge=1)
    min_count: float = bounded(100.0, ge=0)
    min_gain: float = bounded(300.0, ge=0)
    merge: bool = True
    merge_threshold: Optional[float] = bounded(None, ge=0)
    frame_subsampling_factor: int = bounded(1, ge=1)

    def __post_init__(self) -> None:
        check_bounds(self)


@dataclass(eq=False)
class Node:
    """A node of a decision tree: a leaf (``leaf`` is its index) or a question (``leaf`` is None).

    Attributes:
        leaf: leaf index, or None for a question.
        pos: what a question asks about: ``"L"`` (left phone), ``"R"`` (right phone) or ``"S"``
            (HMM state index); :data:`POSITIONS`.
        values: the set of phones (or state indices) answered "yes".
        yes: child for contexts whose value is in ``values``.
        no: child for the others.
    """

    leaf: Optional[int] = None
    pos: str = ""
    values: FrozenSet = frozenset()
    yes: Optional["Node"] = None
    no: Optional["Node"] = None

    @classmethod
    def question(cls, pos: str, values, yes: "Node", no: "Node") -> "Node":
        """A question node (raises ``ValueError`` for an unknown position)."""
        if pos not in POSITIONS:
            raise ValueError(f"question position must be one of {sorted(POSITIONS)}, not {pos!r}")
        return cls(None, pos, frozenset(values), yes, no)

    def split(self, pos: str, values, yes: "Node", no: "Node") -> None:
        """Turn this leaf into a question in place (parents keep their reference)."""
        q = Node.question(pos, values, yes, no)
        self.leaf, self.pos, self.values, self.yes, self.no = None, q.pos, q.values, q.yes, q.no


class DecisionTree:
    """A phonetic decision tree mapping triphone states to senones.

    One root :class:`Node` per central phone. ``leaf_pdf[k]`` is the senone (pdf-id) of leaf
    ``k`` (several leaves share a pdf after merging). Saved as JSON: a leaf ``{"leaf": k}``, a
    question ``{"pos": "L"|"R"|"S", "set": [...], "yes": node, "no": node}``.

    Args:
        roots: central phone -> root node.
        leaf_pdf: pdf-id of every leaf.
        num_states: HMM states of every phone (for enumerating and for state questions).
    """

    def __init__(self, roots: Dict[str, Node], leaf_pdf: List[int], num_states: Dict[str, int]):
        self.roots = roots
        self.leaf_pdf = leaf_pdf
        self.num_states = num_states

    @property
    def num_pdfs(self) -> int:
        """Number of senones S."""
        return max(self.leaf_pdf) + 1

    def leaf(self, left: str, phone: str, right: str, state: int) -> int:
        """Leaf index of a triphone state (any contexts, seen or unseen).

        Raises:
            KeyError: ``phone`` has no root.
        """
        ctx = (left, phone, right, state)
        node = self.roots[phone]
        while node.leaf is None:
            node = node.yes if ctx[POSITIONS[node.pos]] in node.values else node.no
        return node.leaf

    def pdf_id(self, left: str, phone: str, right: str, state: int) -> int:
        """Senone of a triphone state."""
        return self.leaf_pdf[self.leaf(left, phone, right, state)]

    def to_dict(self) -> Dict[str, object]:
        """JSON-serializable form (question sets as sorted lists)."""
        def conv(n: Node):
            if n.leaf is not None:
                return {"leaf": n.leaf}
            return {"pos": n.pos, "set": sorted(n.values, key=str), "yes": conv(n.yes), "no": conv(n.no)}
        return {"roots": {p: conv(n) for p, n in self.roots.items()}, "leaf_pdf": self.leaf_pdf,
                "num_states": self.num_states}

    def save(self, path: Union[str, Path]) -> None:
        """Write as JSON (atomically)."""
        write_text_atomic(path, json.dumps(self.to_dict()) + "\n")

    @classmethod
    def load(cls, path: Union[str, Path]) -> "DecisionTree":
        """Read a tree written by :meth:`save`; raises :class:`InputError` if unreadable."""
        try:
            d = json.loads(Path(path).read_text())

            def conv(n) -> Node:
                if "leaf" in n:
                    return Node(leaf=int(n["leaf"]))
                values = frozenset(int(v) if n["pos"] == "S" else v for v in n["set"])
                return Node.question(n["pos"], values, conv(n["yes"]), conv(n["no"]))
            return cls({p: conv(n) for p, n in d["roots"].items()}, [int(x) for x in d["leaf_pdf"]],
                       {p: int(n) for p, n in d["num_states"].items()})
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise InputError(path, f"not a valid decision tree: {e}") from None

    def format(self) -> str:
        """Human-readable indented dump, one line per node."""
        lines: List[str] = []

        def walk(n: Node, depth: int) -> None:
            pad = "  " * depth
            if n.leaf is not None:
                lines.append(f"{pad}leaf {n.leaf} -> pdf {self.leaf_pdf[n.leaf]}")
                return
            members = " ".join(str(v) for v in sorted(n.values, key=str))
            lines.append(f"{pad}{n.pos} in {{{members}}}?")
            walk(n.yes, depth + 1)
            walk(n.no, depth + 1)
        for phone in sorted(self.roots):
            lines.append(f"{phone}:")
            walk(self.roots[phone], 1)
        return "\n".join(lines) + "\n"


def _state_questions(n: int) -> List[FrozenSet[int]]:
    return [frozenset([s]) for s in range(n)] + [frozenset(range(k)) for k in range(2, n)]


def best_split(items: Sequence[Context], stats: Dict[Context, GaussStats], questions: Sequence[FrozenSet[str]],
               num_states: int, dim: int, min_count: float) -> Optional[Tuple[float, str, FrozenSet]]:
    """The question that best splits a node (the greedy step of tree building).

    Statistics are pooled per value of the asked position first; a question's gain is
    ``LL(yes) + LL(no) - LL(yes + no)`` with one ML diagonal Gaussian per set
    (:meth:`GaussStats.log_likelihood`; Young, Odell & Woodland 1994, section 3).

    Args:
        items: the node's contexts ``(left, phone, right, state)``.
        stats: statistics of every context.
        questions: phone sets asked about the left and right context.
        num_states: HMM states of the node's phone (the state questions are built from it).
        dim: feature dimension F.
        min_count: minimum frames on each side of a split.

    Returns:
        ``(gain in nats, position "L" | "R" | "S", value set)`` of the best allowed question, or
        None when no question leaves ``min_count`` frames on both sides. Gains within
        :data:`GAIN_TIE` (relative) of each other are a tie, won by the first question asked
        (left context, right context, state; questions in order): a question on one side and one
        on the other that split the node's contexts into the same two sets gain the same, and the
        last bits of their computed gains must not decide (statistics summed from shards differ
        there from one job's).
    """
    best = None
    for pos in ("L", "R", "S"):
        i = POSITIONS[pos]
        by_value: Dict[object, GaussStats] = {}
        for c in items:
            by_value[c[i]] = by_value[c[i]] + stats[c] if c[i] in by_value else stats[c]
        if len(by_value) < 2:
            continue
        total = sum_stats(by_value.values(), dim)
        parent_ll = total.log_likelihood()
        cands = _state_questions(num_states) if pos == "S" else questions
        for q in cands:
            yes = sum_stats((s for v, s in by_value.items() if v in q), dim)
            if yes.count < min_count or total.count - yes.count < min_count:
                continue
            gain = yes.log_likelihood() + (total - yes).log_likelihood() - parent_ll
            if best is None or gain > best[0] + GAIN_TIE * max(1.0, abs(best[0])):
                best = (gain, pos, frozenset(q))
    return best


def build_tree(
    stats: Dict[Context, GaussStats],
    questions: Sequence[FrozenSet[str]],
    num_states: Dict[str, int],
    config: TreeConfig = TreeConfig(),
    ci_phones: Sequence[str] = ("SIL", "SPN"),
) -> DecisionTree:
    """Build a decision tree from triphone-state statistics (algorithm in the module docstring).

    Args:
        stats: ``{(left, phone, right, state): GaussStats}`` from
            :func:`hybrid_asr.hmm.tree_stats.accumulate_tree_stats`.
        questions: phone sets asked about left/right contexts.
        num_states: HMM states per phone; every phone gets a root, even one never seen.
        config: leaf budget, minimum counts and gain, merging.
        ci_phones: context-independent phones (split by state only).

    Returns:
        The tree; ``num_pdfs`` senones.

    Raises:
        ValueError: ``stats`` is empty.
    """
    if not stats:
        raise ValueError("no triphone-state statistics to build a tree from")
    dim = len(next(iter(stats.values())).sum)
    by_phone: Dict[str, List[Context]] = {p: [] for p in num_states}
    for c in stats:
        by_phone.setdefault(c[1], []).append(c)
    counter = itertools.count()
    leaves: Dict[int, Tuple[str, Node, List[Context]]] = {}
    roots: Dict[str, Node] = {}

    def new_leaf(phone, items):
        k = next(counter)
        node = Node(leaf=k)
        leaves[k] = (phone, node, items)
        return node

    def split(node: Node, pos: str, values, phone: str, items):
        i = POSITIONS[pos]
        yes_items = [c for c in items if c[i] in values]
        no_items = [c for c in items if c[i] not in values]
        del leaves[node.leaf]
        yes, no = new_leaf(phone, yes_items), new_leaf(phone, no_items)
        node.split(pos, values, yes, no)
        return yes, no

    heap = []
    for phone, n in num_states.items():
        root = new_leaf(phone, by_phone.get(phone, []))
        roots[phone] = root
        if phone in ci_phones or not by_phone.get(phone):
            # one leaf per state: split off state 0, then 1, ... (no data needed)
            node = root
            for s in range(n - 1):
                _, node = split(node, "S", frozenset([s]), phone, leaves[node.leaf][2])
            continue
        best = best_split(leaves[root.leaf][2], stats, questions, n, dim, config.min_count)
        if best:
            heapq.heappush(heap, (-best[0], root.leaf, best[1], best[2]))
    last_gain = float("nan")
    while heap and len(leaves) < config.num_leaves:
        neg_gain, k, pos, values = heapq.heappop(heap)
        if -neg_gain <= config.min_gain:
            break
        phone, node, items = leaves[k]
        last_gain = -neg_gain
        for child in split(node, pos, values, phone, items):
            best = best_split(leaves[child.leaf][2], stats, questions, num_states[phone], dim, config.min_count)
            if best:
                heapq.heappush(heap, (-best[0], child.leaf, best[1], best[2]))
    leaf_ids = sorted(leaves)
    index = {k: i for i, k in enumerate(leaf_ids)}
    relabel = {}
    for k in leaf_ids:
        leaves[k][1].leaf = index[k]
        relabel[index[k]] = leaves[k]
    cluster = list(range(len(leaf_ids)))
    if config.merge:
        threshold = config.min_gain if config.merge_threshold is None else config.merge_threshold
        cluster = _merge_leaves(relabel, stats, dim, threshold, ci_phones)
    # dense pdf-ids in first-seen leaf order
    pdf_of: Dict[int, int] = {}
    leaf_pdf = [pdf_of.setdefault(c, len(pdf_of)) for c in cluster]
    log.info("decision tree: %d leaves, %d senones after merging (last split gain %.1f)", len(leaf_ids),
             len(pdf_of), last_gain)
    return DecisionTree(roots, leaf_pdf, dict(num_states))


def tree_from_alignments(
    states: Mapping[str, np.ndarray],
    marks: Mapping[str, np.ndarray],
    features: Callable[[str], np.ndarray],
    topo: HmmTopology,
    config: TreeConfig = TreeConfig(),
    ci_phones: Sequence[str] = ("SIL", "SPN"),
    extra_questions: Sequence[FrozenSet[str]] = (),
) -> Tuple[DecisionTree, int, List[FrozenSet[str]]]:
    """Accumulate triphone-state statistics, make the questions by clustering the phones, and
    build the tree (Kaldi's ``acc-tree-stats``, ``cluster-phones``, ``build-tree``).

    Args:
        states: ``utt_id -> int [T]`` monophone HMM state (pdf-id of ``topo``) of every frame.
        marks: ``utt_id -> int [T]`` phone-start marks of the same alignments.
        features: ``utt_id -> float [T, F]`` the frames the tree's Gaussians model.
        topo: the monophone topology.
        config: leaf budget, thresholds.
        ci_phones: context-independent phones (not clustered, split by state only).
        extra_questions: hand-written phone classes added to the automatic questions.

    Returns:
        ``(tree, contexts seen, questions)``.

    Raises:
        AlignmentError: the marks of an utterance do not start a phone on its first frame.
        ValueError: no statistics (no aligned utterance).
    """
    stats = accumulate_tree_stats(states, marks, features, topo, config.frame_subsampling_factor)
    tree, questions = tree_from_stats(stats, topo, config, ci_phones, extra_questions)
    return tree, len(stats), questions


def tree_from_stats(
    stats: Mapping[Context, GaussStats],
    topo: HmmTopology,
    config: TreeConfig = TreeConfig(),
    ci_phones: Sequence[str] = ("SIL", "SPN"),
    extra_questions: Sequence[FrozenSet[str]] = (),
) -> Tuple[DecisionTree, List[FrozenSet[str]]]:
    """The questions (phones clustered by their pooled statistics) and the tree built from
    accumulated statistics (:func:`tree_from_alignments` after its accumulation: Kaldi's
    ``cluster-phones`` and ``build-tree`` on summed ``acc-tree-stats`` output).

    The contexts are taken in sorted order, so the tree depends on the statistics only, not on
    the order they were accumulated or summed in (pooled sums are then added in one order:
    statistics summed from shards give the one-job tree).

    Returns:
        ``(tree, questions)``.

    Raises:
        ValueError: no statistics.
    """
    stats = dict(sorted(stats.items()))
    per_phone: Dict[str, GaussStats] = {}
    for (_, phone, _, _), s in stats.items():
        per_phone[phone] = per_phone[phone] + s if phone in per_phone else s
    questions = cluster_phones(per_phone, [p for p in topo.phones if p not in ci_phones])
    questions = list(dict.fromkeys(list(questions) + list(extra_questions)))
    tree = build_tree(stats, questions, dict(zip(topo.phones, topo.num_states)), config, ci_phones)
    return tree, questions


def _merge_leaves(leaves: Dict[int, Tuple[str, Node, List[Context]]], stats, dim: int,
                  threshold: float, ci_phones: Sequence[str]) -> List[int]:
    """Agglomerative merging of leaves within each central phone while the loss < ``threshold``;
    context-independent phones keep one senone per state.

    Returns:
        Cluster representative (a leaf index) for every leaf index.
    """
    cluster = list(range(len(leaves)))
    for phone in sorted({v[0] for v in leaves.values()} - set(ci_phones)):
        groups: Dict[int, GaussStats] = {
            k: sum_stats((stats[c] for c in items), dim) for k, (p, _, items) in leaves.items() if p == phone and items
        }
        for a, b in _cheapest_merges(groups, threshold):
            cluster = [a if c == b else c for c in cluster]
    return cluster


def _cheapest_merges(groups: Dict[int, GaussStats], threshold: float) -> List[Tuple[int, int]]:
    """Merge the pair of groups whose merge loses the least log-likelihood (ties: the smaller
    ids) while that loss is below ``threshold``; ``groups`` is updated in place.

    The pair losses sit in a heap whose entries of merged groups are skipped as stale, so n groups
    cost O(n^2 log n) instead of the O(n^3) of rescanning every pair after each merge.

    Returns:
        The merges ``(kept id, merged id)`` in order.
    """
    ll = {k: g.log_likelihood() for k, g in groups.items()}
    version = dict.fromkeys(groups, 0)

    def entry(a: int, b: int) -> Tuple[float, int, int, int, int]:
        a, b = min(a, b), max(a, b)
        return ll[a] + ll[b] - (groups[a] + groups[b]).log_likelihood(), a, b, version[a], version[b]

    heap = [entry(a, b) for a, b in itertools.combinations(sorted(groups), 2)]
    heapq.heapify(heap)
    merges = []
    while heap:
        loss, a, b, va, vb = heapq.heappop(heap)
        if a not in groups or b not in groups or (va, vb) != (version[a], version[b]):
            continue
        if loss >= threshold:
            break
        groups[a] = groups[a] + groups.pop(b)
        ll[a] = groups[a].log_likelihood()
        version[a] += 1
        del ll[b]
        merges.append((a, b))
        for c in groups:
            if c != a:
                heapq.heappush(heap, entry(a, c))
    return merges
