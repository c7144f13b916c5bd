"""n-gram language model: Kneser-Ney estimation (kaldingram) and ARPA -> G (kaldilm)."""

import contextlib
import io
import logging
from pathlib import Path
from typing import Iterable, Union

import k2
import kaldilm

from hybrid_asr.errors import HybridAsrError
from hybrid_asr.utils import atomic_path, write_text_atomic

log = logging.getLogger(__name__)


def train_arpa(sentences: Iterable[str], out_arpa: Union[str, Path], order: int = 3) -> None:
    """Estimate an interpolated-backoff Kneser-Ney n-gram LM and write it in ARPA format.

    Uses kaldingram (SRILM-equivalent ``ngram-count -ukndiscount``; Kneser & Ney 1995, Chen &
    Goodman 1998). Only pass training transcripts: never test text.

    Args:
        sentences: one transcript per item, words separated by spaces (no ``<s>``/``</s>``).
        out_arpa: ARPA file to write (atomically).
        order: n-gram order, 1..5.

    Raises:
        HybridAsrError: no non-empty sentence, or an order outside 1..5.
    """
    from kaldingram import train as kn

    if not 1 <= order <= 5:
        raise HybridAsrError(f"LM order must be between 1 and 5, got {order}")
    lines = [s.strip() for s in sentences if s.strip()]
    if not lines:
        raise HybridAsrError(f"{out_arpa}: no training text for the language model")
    out_arpa = Path(out_arpa)
    text_file = out_arpa.with_suffix(".train.txt")
    write_text_atomic(text_file, "\n".join(lines) + "\n")
    with atomic_path(out_arpa) as tmp, contextlib.redirect_stderr(io.StringIO()):  # its progress bars
        try:
            kn.main(["--ngram-order", str(order), "--text", str(text_file), "--lm", str(tmp)])
        except SystemExit as e:  # its argparse rejected something: never exit the caller's process
            raise HybridAsrError(f"{out_arpa}: kaldingram refused the LM options (exit {e.code})") from None
    log.info("trained %d-gram LM on %d sentences -> %s", order, len(lines), out_arpa)


def arpa_to_g(arpa: Union[str, Path], words_txt: Union[str, Path], order: int = -1) -> k2.Fsa:
    """Convert an ARPA LM to the grammar transducer G with kaldilm.

    Back-off arcs carry the disambiguation symbol ``#0`` on the input side and epsilon on the
    output; ``<s>``/``</s>`` become epsilon (Kaldi ``arpa2fst --disambig-symbol=#0``).

    Args:
        arpa: ARPA file.
        words_txt: word symbol table containing every LM word, ``#0``, ``<s>`` and ``</s>``.
        order: highest n-gram order to use, -1 for all.

    Returns:
        k2 transducer (labels and aux_labels = word ids), scores in log base e.
    """
    text = kaldilm.arpa2fst(
        str(arpa), disambig_symbol="#0", read_symbol_table=str(words_txt), max_order=order
    )
    return k2.Fsa.from_openfst(text, acceptor=False)
