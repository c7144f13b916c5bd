"""The tree-building stage: monophone alignments + features -> decision-tree directory.

Writes ``tree.json`` (:class:`DecisionTree`), ``tree.txt`` (its readable dump), ``questions.txt``
(one question per line) and ``tree_info.json`` (contexts seen, leaves, senones, seconds).
"""

import json
import logging
import time
from pathlib import Path
from typing import Optional, Union

from hybrid_asr.hmm.alignment import load_alignment_dir, load_hmm_states
from hybrid_asr.errors import HybridAsrError
from hybrid_asr.features.storage import FeatureStore
from hybrid_asr.hmm.questions import read_phone_classes
from hybrid_asr.hmm.tree import DecisionTree, TreeConfig, tree_from_alignments
from hybrid_asr.lang.lexicon import SIL, SPN
from hybrid_asr.utils import write_text_atomic

log = logging.getLogger(__name__)


def build_tree_stage(store: FeatureStore, ali_dir: Union[str, Path], out_dir: Union[str, Path],
                     config: TreeConfig, classes: Optional[Union[str, Path]] = None) -> DecisionTree:
    """Accumulate triphone-state statistics, make questions, build and save the tree.

    Args:
        store: training features (normalized with the store's CMVN mode).
        ali_dir: alignment directory (``ali.npz``, ``phones.npz``, ``topology.json``): monophone,
            or senone alignments with their HMM states (``states.npz``, as Kaldi builds a
            triphone system's tree from the previous triphone system's alignments).
        out_dir: directory to write.
        config: tree settings (leaf budget, thresholds).
        classes: optional hand-written phone class file added to the automatic questions.

    Returns:
        The tree.

    Raises:
        InputError: a file of the alignment directory is missing or invalid (a senone directory
            without ``states.npz``).
        HybridAsrError: no aligned utterance is in the feature store.
    """
    start = time.time()
    ali_dir, out = Path(ali_dir), Path(out_dir)
    _, marks, topo = load_alignment_dir(ali_dir)
    aligned = {u: a for u, a in load_hmm_states(ali_dir).items() if u in store}
    if not aligned:
        raise HybridAsrError(f"{ali_dir}: none of its utterances is in the feature store {store.path}")
    extra = read_phone_classes(classes, topo.phones) if classes is not None else []
    tree, contexts, questions = tree_from_alignments(aligned, marks, lambda u: store.normalized(u).numpy(), topo,
                                                     config, (SIL, SPN), extra)
    out.mkdir(parents=True, exist_ok=True)
    (out / "tree.json").unlink(missing_ok=True)  # incomplete until the new tree.json is written
    write_text_atomic(out / "questions.txt", "".join(" ".join(sorted(q)) + "\n" for q in questions))
    write_text_atomic(out / "tree.txt", tree.format())
    info = {"contexts": contexts, "questions": len(questions), "leaves": len(tree.leaf_pdf),
            "senones": tree.num_pdfs, "seconds": round(time.time() - start, 2), "config": config.__dict__}
    write_text_atomic(out / "tree_info.json", json.dumps(info, indent=2) + "\n")
    tree.save(out / "tree.json")  # last: marks a complete directory
    log.info("tree: %d contexts, %d questions, %d leaves, %d senones -> %s", contexts, len(questions),
             len(tree.leaf_pdf), tree.num_pdfs, out)
    return tree
