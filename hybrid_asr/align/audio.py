"""Forced alignment of one audio file with its transcript (monophone or senone model)."""

from pathlib import Path
from typing import Optional, Union

from hybrid_asr.hmm.alignment import FrameAlignment, upsample_alignment
from hybrid_asr.align.viterbi import viterbi_align
from hybrid_asr.bundle import ModelBundle
from hybrid_asr.likelihoods import audio_log_likelihoods
from hybrid_asr.errors import AlignmentError
from hybrid_asr.graph.training import TrainingGraphCompiler
from hybrid_asr.lang.lang_dir import Lang
from hybrid_asr.lang.text import check_transcript_words


def align_audio(bundle: ModelBundle, lang: Lang, path: Union[str, Path], text: str,
                cmvn: Optional[str] = None) -> FrameAlignment:
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
        :class:`FrameAlignment` with one pdf-id and one phone-start mark per frame.

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
    return upsample_alignment(ali, factor, scores.shape[0] * factor)
