"""Stage: ``hybrid-asr decode``: recognise audio inputs of any kind and length.

Inputs (:func:`hybrid_asr.data.inputs.collect_inputs`) become segments; a segment longer than
``max_segment_seconds`` is cut at its quietest moments (:mod:`hybrid_asr.features.segment`) and
pieces are read, scored and searched ``batch_size`` at a time, so memory does not grow with the
recording. Per piece: the best path (the model's search backend); word times from a forced alignment of the
words found (the model's own H, through L; times at the feature frame rate); word confidences and
N-best lists from paths sampled from the piece's k2 lattice (:mod:`hybrid_asr.decoding.lattice`).
"""

import json
import logging
import re
import time
import urllib.parse
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Deque, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import torch

from hybrid_asr.bounds import bounded, check_bounds
from hybrid_asr.align.viterbi import viterbi_align
from hybrid_asr.align.words import word_spans
from hybrid_asr.bundle import ModelBundle, load_graph
from hybrid_asr.stages.gmm import speaker_independent_dir
from hybrid_asr.data.inputs import AudioSegment, collect_inputs
from hybrid_asr.decoding.lattice import lattice_of, nbest_from_samples, sample_word_sequences, word_confidences
from hybrid_asr.decoding.search import Searcher
from hybrid_asr.errors import AlignmentError, HybridAsrError, InputError
from hybrid_asr.features.audio import load_audio
from hybrid_asr.features.segment import segment_long_audio
from hybrid_asr.features.trim import TrimConfig, speech_bounds
from hybrid_asr.graph.training import TrainingGraphCompiler
from hybrid_asr.hmm.alignment import segments_from_marks, upsample_alignment
from hybrid_asr.lang.lang_dir import Lang
from hybrid_asr.likelihoods import log_likelihoods, waveform_features, waveform_log_likelihoods
from hybrid_asr.stages.fmllr import FRONTEND_DIR, FmllrFrontend
from hybrid_asr.utils import progress

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DecodeOptions:
    """What ``hybrid-asr decode`` computes besides the words.

    Attributes:
        word_times: word start times and durations (forced alignment of the words found).
        confidences: a posterior per word (needs the k2 lattice).
        nbest: number of N-best hypotheses to return (0: none; needs the k2 lattice).
        num_paths: paths sampled from each lattice for confidences and N-best lists.
        max_segment_seconds: longer audio is cut into pieces of at most this length.
        batch_size: pieces of audio searched together (:meth:`AudioDecoder.decode_stream`: one
            call of the search backend, one batch for k2); memory holds this many pieces' scores.
        cmvn: ``"utterance"`` or ``"global"`` (default: the model's mode; ``speaker`` -> global).
        trim: trim each piece to its speech plus a margin before scoring it
            (:func:`hybrid_asr.features.trim.speech_bounds`); None: decode the whole piece. A
            piece without speech gives no words.
        allow_pipes: run the commands of ``wav.scp`` pipe entries (``... |``) and read their output.
    """

    word_times: bool = False
    confidences: bool = False
    nbest: int = bounded(0, ge=0)
    num_paths: int = bounded(100, ge=1)
    max_segment_seconds: float = bounded(30.0, ge=0.1)
    batch_size: int = bounded(8, ge=1)
    cmvn: Optional[str] = None
    trim: Optional[TrimConfig] = TrimConfig()
    allow_pipes: bool = False

    def __post_init__(self) -> None:
        check_bounds(self)


@dataclass
class DecodedWord:
    """A recognised word: ``start`` (seconds, from the start of the recording) and ``duration``
    (seconds) when word times were asked for; ``confidence`` in [0, 1] when asked for."""

    word: str
    start: Optional[float] = None
    duration: Optional[float] = None
    confidence: Optional[float] = None


@dataclass
class DecodedSegment:
    """The result for one input segment: its words, N-best ``(text, posterior)`` per piece
    (for a segment of one piece: of the segment), audio seconds, or the error that stopped it."""

    segment: AudioSegment
    words: List[DecodedWord] = field(default_factory=list)
    nbest: List[List[Tuple[str, float]]] = field(default_factory=list)
    audio_seconds: float = 0.0
    error: Optional[str] = None

    @property
    def text(self) -> str:
        return " ".join(w.word for w in self.words)


class AudioDecoder:
    """Decodes audio segments with a model directory (graph, words, search settings loaded once).

    A speaker-adapted (SAT) GMM decodes lone files with its speaker-independent GMMs
    (``si_model/``, same tree and graph), with a warning; ``decode-dataset`` adapts per speaker
    (on AN4 dev, adapting each file on its own with a diagonal transform gave 8.99% WER against
    7.84% for the speaker-independent GMMs, so files are not adapted for a GMM). A neural model
    trained on fMLLR features adapts each file on its own with the SAT GMM it carries in
    ``fmllr_frontend/`` (:class:`~hybrid_asr.stages.fmllr.FmllrFrontend`: first pass, transform,
    then the model on the adapted frames); ``options.cmvn`` then normalizes the SAT model's
    features.

    Args:
        model_dir: model directory with a graph.
        search_overrides: fields of :class:`~hybrid_asr.bundle.SearchConfig` to change.
        options: what to compute besides the words.

    Raises:
        InputError: the model directory is incomplete, or word times need the lang dir the graph
            was built from and it is gone.
    """

    def __init__(self, model_dir: Union[str, Path], search_overrides: Optional[dict] = None,
                 options: DecodeOptions = DecodeOptions()):
        self.bundle = ModelBundle.load(model_dir)
        self.frontend = None
        if self.bundle.feature_config.kind == "fmllr":
            self.frontend = FmllrFrontend.load(model_dir)
            if self.frontend is None:
                raise InputError(model_dir, f"the model reads speaker-adapted (fmllr) features and has no SAT model in "
                                 f"{FRONTEND_DIR}/ to adapt files with (trained before lone-file adaptation existed): "
                                 f"decode an adapt-features store with decode-dataset")
            log.info("%s reads fMLLR features: each file is adapted on its own (a first pass with the SAT GMM's "
                     "speaker-independent model, then its fMLLR transform)", model_dir)
        self.graph, self.words, search = load_graph(model_dir, self.bundle)
        si_dir = speaker_independent_dir(model_dir)
        if si_dir is not None:
            log.warning("%s is speaker-adapted (SAT): decoding files with its speaker-independent model %s "
                        "(decode-dataset adapts to each speaker)", model_dir, si_dir)
            self.bundle = ModelBundle.load(si_dir)
        self.search = replace(search, **(search_overrides or {}))
        self.options = options
        device = self.search.torch_device()
        self.bundle.model.to(device)
        self.searcher = Searcher(self.graph, device, model_dir)
        self.frame_shift = self.bundle.feature_config.frame_shift_ms / 1000
        self.compiler = self.frontend_compiler = None
        if options.word_times or self.frontend is not None:
            lang_dir = Path(model_dir) / "lang"  # copied by make-graph
            if not (lang_dir / "lang.json").is_file():
                info = json.loads((Path(model_dir) / "graph_info.json").read_text())
                lang_dir = Path(info.get("lang_dir", ""))
            if not (lang_dir / "lang.json").is_file():
                raise InputError(Path(model_dir) / "graph_info.json", f"word times and fMLLR need the lexicon and L of "
                                 f"the lang dir {lang_dir} the graph was built from; it is missing (rerun make-graph)")
            self.lang = Lang(lang_dir)
            self.bundle.check_lang(model_dir, lang_dir, self.lang.phone_pairs)
            if options.word_times:
                self.compiler = TrainingGraphCompiler(self.lang, self.bundle.topology, self.bundle.make_h())
            if self.frontend is not None:
                sat = self.frontend.si_bundle
                if sat.num_pdfs != self.bundle.num_pdfs:
                    raise InputError(Path(model_dir) / FRONTEND_DIR, f"the SAT model has {sat.num_pdfs} pdfs, the "
                                     f"model {self.bundle.num_pdfs}: its first pass cannot use the model's graph")
                self.frontend_compiler = TrainingGraphCompiler(self.lang, sat.topology, sat.make_h(hmm_states=True))

    def decode(self, segment: AudioSegment) -> DecodedSegment:
        """Decode one segment (all its pieces); errors are returned in the result, not raised."""
        return next(self.decode_stream([segment]))

    def decode_stream(self, segments: Iterable[AudioSegment]) -> Iterator[DecodedSegment]:
        """Decode segments in order, ``options.batch_size`` pieces at a time: the pieces are
        scored, searched in one call of the search backend (one k2 intersection for the batch;
        Kaldi's FasterDecoder takes them one by one), then each gets its word times, confidences
        and N-best list. Memory holds the scores of one batch of pieces, whatever the lengths of
        the recordings. A segment that fails yields its error and the others go on."""
        size = max(1, self.options.batch_size)
        waiting: Deque[DecodedSegment] = deque()  # yielded in input order once their pieces are done
        batch: List[Tuple[DecodedSegment, Path, float, torch.Tensor]] = []

        def search_batch() -> None:
            if not batch:
                return
            for (result, path, start, scores), ids in zip(batch, self.searcher([p[3] for p in batch], self.search)):
                if result.error is not None:
                    continue
                try:
                    words, nbest = self._finish_piece(path, start, scores, ids)
                except (InputError, AlignmentError) as e:
                    result.error = str(e)
                    continue
                result.words += words
                if nbest:
                    result.nbest.append(nbest)
            batch.clear()

        def finished() -> Iterator[DecodedSegment]:
            busy = {id(p[0]) for p in batch}
            while waiting and id(waiting[0]) not in busy:
                result = waiting.popleft()
                if result.error is not None:
                    result.words, result.nbest = [], []
                yield result

        for seg in segments:
            result = DecodedSegment(seg)
            waiting.append(result)
            try:
                for start, duration in segment_long_audio(seg.path, seg.start, seg.duration,
                                                          self.options.max_segment_seconds, channel=seg.channel):
                    scored = self._score_piece(seg.path, start, duration, seg.channel)
                    result.audio_seconds += duration
                    if scored is not None:
                        batch.append((result, seg.path, *scored))
                    if len(batch) >= size:
                        search_batch()
            except (InputError, AlignmentError) as e:
                result.error = str(e)
            yield from finished()
        search_batch()
        yield from finished()

    def _score_piece(self, path: Path, start: float, duration: float, channel=None):
        """``(start seconds, [T', S] log-likelihoods)`` of a piece (of ``channel``) after trimming; None: no speech."""
        rate = self.bundle.feature_config.sample_rate
        wave = load_audio(path, rate, start, duration, channel)
        if self.options.trim is not None:
            bounds = speech_bounds(wave, rate, self.options.trim)
            if bounds is None:
                log.info("%s: no speech found in %.2f s from %.2f s", path, duration, start)
                return None
            wave = wave[bounds[0]:bounds[1]]
            start += bounds[0] / rate
        if self.frontend is None:
            return start, waveform_log_likelihoods(self.bundle, wave, self.options.cmvn, path)
        return start, self._adapted_log_likelihoods(wave, path)

    def _adapted_log_likelihoods(self, wave: torch.Tensor, path: Path) -> torch.Tensor:
        """``[T', S]`` log-likelihoods of the model on the file's own fMLLR frames
        (:class:`~hybrid_asr.stages.fmllr.FmllrFrontend`)."""
        feats = waveform_features(self.frontend.bundle, wave, self.options.cmvn, path)

        def first_pass(scores: torch.Tensor, scale: Optional[float]) -> List[str]:
            search = self.search if scale is None else replace(self.search, acoustic_scale=scale)
            return [self.words.get(i) for i in self.searcher([scores], search)[0]]

        transform, gain, made = self.frontend.transform(feats, first_pass, self.frontend_compiler)
        log.debug("%s: fMLLR %d estimate(s), objective gain %.3f per frame", path, made, gain)
        adapted = self.frontend.adapted_frames(feats, transform)
        return log_likelihoods(self.bundle.model, self.bundle.cmvn.apply(adapted), self.bundle.log_priors)

    def _finish_piece(self, path: Path, start: float, scores: torch.Tensor, ids: List[int]):
        """``(words, N-best)`` of a searched piece: the best path's ``ids`` as words, with times
        (seconds from the recording's start) and confidences when asked for; ``scores`` are its
        ``[T', S]`` log-likelihoods.

        Raises:
            AlignmentError: word times were asked for and the words cannot be aligned.
        """
        names = [self.words.get(i) for i in ids]
        words = [DecodedWord(w) for w in names]
        nbest: List[Tuple[str, float]] = []
        if self.options.confidences or self.options.nbest:
            lattice = lattice_of(self.searcher.graph_for(self.search), scores, self.search)
            samples = sample_word_sequences(lattice, self.options.num_paths)
            if self.options.confidences:
                for w, c in zip(words, word_confidences(ids, samples)):
                    w.confidence = round(float(c), 4)
            nbest = [(" ".join(self.words.get(i) for i in seq), round(p, 4))
                     for seq, p in nbest_from_samples(samples, self.options.nbest)]
        if self.compiler is not None and names:
            ali = viterbi_align(self.compiler, [" ".join(names)], [scores])[0]
            if not len(ali.pdfs):
                raise AlignmentError(f"{path}: the words found cannot be aligned to the audio at {start:.2f} s")
            factor = self.bundle.model.subsampling_factor
            ali = upsample_alignment(ali, factor, scores.shape[0] * factor)
            phones = segments_from_marks(ali.phone_marks, self.bundle.topology.phone_names)
            for w, (_, a, b) in zip(words, word_spans(phones, names, self.lang.lexicon)):
                w.start = round(start + a * self.frame_shift, 3)
                w.duration = round((b - a) * self.frame_shift, 3)
        return words, nbest


def decode_inputs(model_dir: Union[str, Path], inputs: Sequence[Union[str, Path]],
                  search_overrides: Optional[dict] = None,
                  options: DecodeOptions = DecodeOptions()) -> Iterator[DecodedSegment]:
    """Decode every segment of ``inputs`` (files, directories, ``wav.scp``, lhotse manifests)
    with a progress bar, yielding results in input order; a segment that fails yields its error
    and the rest continue; an input that yields no segment is reported as a failed segment. Logs
    a warning when ids are escaped for output (:func:`output_id`) and a final line with the
    segment counts, the audio duration, the wall time and (when any audio was decoded) the
    real-time factor.

    Raises:
        InputError: the model directory is incomplete.
    """
    decoder = AudioDecoder(model_dir, search_overrides, options)
    segments, problems = collect_inputs(inputs, options.allow_pipes)
    escaped = [s.id for s in segments if output_id(s.id) != s.id]
    if escaped:
        log.warning("%d input ids hold whitespace or '%%' (e.g. %r): written with those characters percent-encoded "
                    "(%r), as Kaldi ids may hold no whitespace", len(escaped), escaped[0], output_id(escaped[0]))
    for item, message in problems:
        yield DecodedSegment(AudioSegment(item, Path(item), item), error=message)
    start, audio, failed = time.time(), 0.0, len(problems)
    with progress(total=len(segments), desc="decode", unit="file") as bar:
        for result in decoder.decode_stream(segments):
            audio += result.audio_seconds
            failed += result.error is not None
            bar.update(1)
            yield result
    wall = time.time() - start
    total = len(segments) + len(problems)
    speed = f", real-time factor {wall / audio:.3f}" if audio > 0 else ""
    log.info("%d segments, %d decoded, %d failed: %.1f s of audio in %.1f s%s", total, total - failed, failed, audio,
             wall, speed)


def output_id(text: str) -> str:
    """An utterance or recording id as written in text, CTM and JSON output: whitespace (which
    Kaldi's tables and CTM cannot hold in a field) and ``%`` percent-encoded as UTF-8 bytes, the
    rest unchanged (``"my file.wav"`` -> ``"my%20file.wav"``); ``urllib.parse.unquote`` gives the
    original back."""
    return re.sub(r"[\s%]", lambda m: urllib.parse.quote(m.group(), safe=""), text)


def ctm_lines(result: DecodedSegment) -> List[str]:
    """CTM lines of a result (``<recording> 1 <start> <duration> <word> [<confidence>]``, times
    in seconds from the start of the recording, the recording id by :func:`output_id`), as
    Kaldi's ``lattice-to-ctm-conf`` writes them.

    Raises:
        HybridAsrError: the result has no word times.
    """
    out = []
    for w in result.words:
        if w.start is None:
            raise HybridAsrError("CTM output needs word times")
        conf = "" if w.confidence is None else f" {w.confidence:.2f}"
        out.append(f"{output_id(result.segment.recording)} 1 {w.start:.2f} {w.duration:.2f} {w.word}{conf}")
    return out
