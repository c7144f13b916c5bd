"""Forced alignment of one audio file with its transcript (monophone or senone model), scored so
that a transcript of other words is noticed."""

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Optional, Sequence, Union

import torch

from hybrid_asr.bounds import bounded, check_bounds
from hybrid_asr.hmm.alignment import FrameAlignment, upsample_alignment
from hybrid_asr.align.viterbi import viterbi_align
from hybrid_asr.bundle import ModelBundle
from hybrid_asr.likelihoods import audio_log_likelihoods
from hybrid_asr.errors import AlignmentError
from hybrid_asr.graph.training import TrainingGraphCompiler
from hybrid_asr.lang.lang_dir import Lang
from hybrid_asr.lang.text import check_transcript_words


@dataclass(frozen=True)
class AlignmentScore:
    """How well an alignment fits the audio, per frame of the model's output (log base e).

    Attributes:
        frames: output frames aligned.
        log_likelihood: mean over frames of the aligned senone's log-likelihood (the model's
            scaled likelihood, log posterior minus log prior, at acoustic scale 1): the "average
            log-likelihood per frame" Kaldi's aligners log and Montreal Forced Aligner reports.
            Its level depends on the model and the recording.
        best_log_likelihood: mean over frames of the best senone's log-likelihood, whatever the
            transcript: the same quantity for an unconstrained frame-by-frame decision.
    """

    frames: int
    log_likelihood: float
    best_log_likelihood: float

    @property
    def gap(self) -> float:
        """``log_likelihood - best_log_likelihood`` (<= 0): how far per frame the transcript's
        path falls below the best senones, a goodness-of-pronunciation style score of the whole
        utterance (Witt & Young 2000, "Phone-level pronunciation scoring and assessment for
        interactive language learning", Speech Communication 30) that does not depend on the
        recording's level or the model's scale as ``log_likelihood`` does."""
        return self.log_likelihood - self.best_log_likelihood


def score_alignment(scores: torch.Tensor, pdfs: Sequence[int]) -> AlignmentScore:
    """Score an alignment.

    Args:
        scores: float32 ``[T, S]`` log-likelihoods (acoustic scale 1) the alignment was made on.
        pdfs: int ``[T]`` aligned pdf-id per frame (a list or an int32 numpy array).

    Returns:
        the :class:`AlignmentScore`.
    """
    aligned = scores[torch.arange(scores.shape[0]), torch.as_tensor(pdfs, dtype=torch.long)]
    return AlignmentScore(int(scores.shape[0]), float(aligned.double().mean()),
                          float(scores.max(dim=1).values.double().mean()))


@dataclass(frozen=True)
class TranscriptCheckConfig:
    """When ``align-audio`` warns that a transcript may not be the audio's.

    Attributes:
        max_gap: warn when a neural model's :attr:`AlignmentScore.gap` is below this (nats per
            frame). Chosen on AN4 dev with the recipe's TDNN (docs/robustness.md): right
            transcripts gave gaps above it, other utterances' transcripts below.
        max_gap_gmm: the same for a GMM model, whose log-likelihoods spread wider (a diagonal
            Gaussian's density of a 40-dimensional frame against a posterior over senones).
            Chosen on AN4 dev with the SAT GMM tri3 (``benchmarks/transcript_check.py``): right
            transcripts' gaps from -6.9 (1st percentile) up, other utterances' at most -9.6
            (99th percentile); at -7 none of the 90 right ones and all 90 wrong ones are flagged.
    """

    max_gap: float = bounded(-2.0, le=0)
    max_gap_gmm: float = bounded(-7.0, le=0)

    def __post_init__(self) -> None:
        check_bounds(self)

    def threshold(self, gmm: bool = False) -> float:
        """The gap below which a transcript is suspicious, for a GMM or a neural model."""
        return self.max_gap_gmm if gmm else self.max_gap

    def suspicious(self, score: AlignmentScore, gmm: bool = False) -> bool:
        """Whether ``score`` is far below what right transcripts get with such a model."""
        return score.gap < self.threshold(gmm)


class AudioAlignment(NamedTuple):
    """A forced alignment at the feature frame rate and its score (at the model's output rate)."""

    alignment: FrameAlignment
    score: AlignmentScore


def align_audio(bundle: ModelBundle, lang: Lang, path: Union[str, Path], text: str,
                cmvn: Optional[str] = None) -> AudioAlignment:
    """Viterbi-align an audio file of any rate and channel count against its transcript.

    The training graph ``H o L o W`` of the transcript uses the bundle's H: the monophone H,
    or for a model with a decision tree the context-dependent H (triphone contexts across word
    boundaries, :func:`hybrid_asr.graph.h_cd.make_h_cd`). Acoustic and transition scales are 1,
    as in training-time realignment. The transcript is checked first
    (:func:`hybrid_asr.lang.text.check_transcript_words`): a word the lexicon has only in upper
    case is uppercased with a warning; an empty transcript or words outside the lexicon are errors.

    Args:
        bundle: trained model.
        lang: lang directory the model was trained with (L, words.txt).
        path: audio file.
        text: transcript, words separated by spaces.
        cmvn: CMVN mode (see :func:`hybrid_asr.likelihoods.audio_log_likelihoods`).

    Returns:
        :class:`AudioAlignment`: a :class:`FrameAlignment` with one pdf-id and one phone-start
        mark per feature frame, and the alignment's :class:`AlignmentScore`.

    Raises:
        InputError: the audio cannot be read; the transcript is empty or has words outside the lexicon.
        AlignmentError: the transcript does not fit the audio (e.g. more HMM states than frames).
    """
    words = check_transcript_words(text, set(lang.lexicon.words), f"transcript of {path}")
    scores = audio_log_likelihoods(bundle, path, cmvn)
    compiler = TrainingGraphCompiler(lang, bundle.topology, bundle.make_h())
    ali = viterbi_align(compiler, [" ".join(words)], [scores])[0]
    if not len(ali.pdfs):
        raise AlignmentError(f"{path}: the transcript cannot be aligned to the {scores.shape[0]} frames")
    factor = bundle.model.subsampling_factor  # back at the feature frame rate for CTM times
    return AudioAlignment(upsample_alignment(ali, factor, scores.shape[0] * factor), score_alignment(scores, ali.pdfs))
