"""Settings of a lang directory (:class:`LangConfig`), apart from the code that builds one, so
that reading them (the command line's options) needs neither k2 nor kaldilm."""

from dataclasses import dataclass

from hybrid_asr.bounds import bounded, check_bounds
from hybrid_asr.errors import ConfigError

MAX_LM_ORDER = 5
"""Highest n-gram order :func:`~hybrid_asr.lang.lm.train_arpa` estimates (kaldingram's
``ngram-count`` limit)."""


@dataclass(frozen=True)
class LangConfig:
    """Settings of the lang directory.

    Attributes:
        sil_prob: probability of optional silence at the start and after each word.
        lm_order: n-gram order of the LM trained on the training transcripts, 1 to
            :data:`MAX_LM_ORDER`.
        lm_vocabulary: ``"lexicon"``: every word of the lexicon can be recognised; words the
            training text lacks share the Good-Turing unseen-word probability through a uniform
            unigram (:func:`~hybrid_asr.lang.lm.add_vocabulary`), as Kaldi's SRILM recipes pass the
            lexicon's word list as ``-vocab``. ``"text"``: only words of the training text.
        lm_prune: entropy-pruning threshold of the LM (SRILM ``-prune``; 0: no pruning).

    Raises:
        ConfigError: a setting out of range (checked at construction, before any work).
    """

    sil_prob: float = bounded(0.5, gt=0, lt=1)
    lm_order: int = bounded(3, ge=1, le=MAX_LM_ORDER)
    lm_vocabulary: str = "lexicon"
    lm_prune: float = bounded(0.0, ge=0)

    def __post_init__(self):
        check_bounds(self)
        if self.lm_vocabulary not in ("lexicon", "text"):
            raise ConfigError(f"lm_vocabulary must be 'lexicon' or 'text', got {self.lm_vocabulary!r}")
        if not isinstance(self.lm_order, int):
            raise ConfigError(f"lm_order must be an integer, got {self.lm_order!r}")


__all__ = ["LangConfig", "MAX_LM_ORDER"]
