"""Sub-commands of ``hybrid-asr``. Each parses arguments and calls one library function."""

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path

from hybrid_asr.cli.options import add_config_options, config_option, config_overrides, number, unused_options

log = logging.getLogger("hybrid_asr.cli")


# ---------------------------------------------------------------- data
def _prepare(args) -> int:
    from hybrid_asr.data import download_an4, download_fsdd, prepare_an4, prepare_fsdd, resolve_corpus_dir, write_split
    from hybrid_asr.data.librispeech import download_librispeech, prepare_librispeech

    parts = tuple(args.parts.split(","))
    download, prepare = {
        "an4": (download_an4, prepare_an4), "fsdd": (download_fsdd, prepare_fsdd),
        "librispeech": (lambda d: download_librispeech(d, parts), lambda c: prepare_librispeech(c, parts)),
    }[args.corpus]
    corpus_dir = resolve_corpus_dir(args.corpus_dir, args.corpus, download, Path(args.download_dir))
    log.info("preparing %s from %s", args.corpus, corpus_dir)
    splits = prepare(corpus_dir)
    for split, (recs, sups) in splits.items():
        write_split(Path(args.out_dir), split, recs, sups)
    if args.corpus == "an4":
        from hybrid_asr.data.an4 import copy_an4_lexicon, write_an4_spk2gender

        write_an4_spk2gender(splits["train"][1], Path(args.out_dir))
        copy_an4_lexicon(corpus_dir, Path(args.out_dir))
    return 0


def add_prepare(sub) -> None:
    from hybrid_asr.data.librispeech import MINI_LIBRISPEECH

    p = sub.add_parser("prepare", help="corpus -> lhotse manifests (train/test splits)")
    p.add_argument("corpus", choices=["an4", "fsdd", "librispeech"])
    p.add_argument("out_dir", help="manifest directory to write")
    p.add_argument("--corpus-dir", help="corpus root (default: ../shared/data/<corpus> if present, else download)")
    p.add_argument("--download-dir", default="downloads", help="where to download the corpus if needed")
    p.add_argument("--parts", default=",".join(MINI_LIBRISPEECH),
                   help="librispeech: comma-separated parts, each a split of its own name (default: mini LibriSpeech)")
    p.set_defaults(func=_prepare)


def _download_librispeech_lm(args) -> int:
    from hybrid_asr.data.librispeech import download_lm_resources

    download_lm_resources(Path(args.out_dir), args.names)
    return 0


def add_download_librispeech_lm(sub) -> None:
    from hybrid_asr.data.librispeech import LM_RESOURCES_URL

    p = sub.add_parser("download-librispeech-lm", help=f"the LibriSpeech LMs and lexicon ({LM_RESOURCES_URL}) "
                       "into a folder, unless they are there")
    p.add_argument("out_dir")
    p.add_argument("names", nargs="+", help="e.g. librispeech-lexicon.txt 3-gram.pruned.3e-7.arpa.gz")
    p.set_defaults(func=_download_librispeech_lm)


def _add_allow_pipes(p) -> None:
    """The one option that lets a command run the shell commands of wav.scp pipe entries."""
    p.add_argument("--allow-pipes", action="store_true",
                   help="run the shell command of each wav.scp entry that ends in '|' (Kaldi pipes such as "
                   "'sox x.sph -t wav - |') and read its output as the audio; without it such entries are errors, "
                   "since a data file should not run commands unless you ask")


def _import_kaldi(args) -> int:
    from hybrid_asr.data import import_kaldi_data_dir, write_split

    recs, sups = import_kaldi_data_dir(Path(args.data_dir), allow_pipes=args.allow_pipes)
    write_split(Path(args.out_dir), args.split, recs, sups)
    return 0


def add_import_kaldi_dir(sub) -> None:
    p = sub.add_parser("import-kaldi-dir", help="Kaldi data dir (wav.scp, text, utt2spk[, segments]) -> manifests")
    p.add_argument("data_dir")
    p.add_argument("out_dir", help="manifest directory to write")
    p.add_argument("--split", required=True, help="split name to store it under (e.g. train)")
    _add_allow_pipes(p)
    p.set_defaults(func=_import_kaldi)


def _hold_out_speakers(args) -> int:
    from hybrid_asr.data import read_split, write_split
    from hybrid_asr.data.kaldi_dir import read_kaldi_map
    from hybrid_asr.data.split import choose_dev_speakers, split_by_speakers

    manifest_dir = Path(args.manifest_dir)
    recs, sups = read_split(manifest_dir, args.source)
    groups = None
    if args.groups:
        groups = read_kaldi_map(Path(args.groups))
    dev_spk = choose_dev_speakers([s.speaker for s in sups], args.fraction, args.seed, groups)
    (rest_recs, rest_sups), (dev_recs, dev_sups) = split_by_speakers(recs, sups, dev_spk)
    write_split(manifest_dir, args.dev, dev_recs, dev_sups)
    write_split(manifest_dir, args.rest, rest_recs, rest_sups)
    log.info("held out %d of %d speakers (%d utterances) as %s: %s", len(dev_spk), len({s.speaker for s in sups}),
             len(dev_sups), args.dev, " ".join(sorted(dev_spk)))
    return 0


def add_hold_out_speakers(sub) -> None:
    p = sub.add_parser("hold-out-speakers", help="split a manifest split into train and dev by whole speakers")
    p.add_argument("manifest_dir")
    p.add_argument("--source", default="train", help="split to divide")
    p.add_argument("--rest", default="train_nodev", help="split name of the remaining speakers")
    p.add_argument("--dev", default="dev", help="split name of the held-out speakers")
    p.add_argument("--fraction", type=number(float, gt=0, lt=1), default=0.1, help="share of speakers held out")
    p.add_argument("--groups", default=None,
                   help="'<speaker> <group>' file: hold out the fraction within each group (e.g. child/adult)")
    p.add_argument("--seed", type=number(int, ge=0), default=0)
    p.set_defaults(func=_hold_out_speakers)


# ---------------------------------------------------------------- features
def _compute_features(args) -> int:
    from hybrid_asr.errors import HybridAsrError
    from hybrid_asr.features import FeatureConfig
    from hybrid_asr.features.augment import AugmentConfig
    from hybrid_asr.features.storage import StoreConfig
    from hybrid_asr.stages.features import compute_split_features
    from hybrid_asr.stages.shards import Shard

    try:
        config = FeatureConfig(**config_overrides(args, FeatureConfig))
        store = StoreConfig(**config_overrides(args, StoreConfig))
        augment = AugmentConfig(**config_overrides(args, AugmentConfig)) if args.augment else None
    except ValueError as e:
        raise HybridAsrError(f"compute-features: {e}") from None
    _, failed = compute_split_features(args.manifest_dir, args.split, config, args.out_dir, args.speed_perturb,
                                       Shard(args.index, args.count), args.nj, augment, store)
    return 2 if failed else 0


def add_compute_features(sub) -> None:
    from hybrid_asr.features import FeatureConfig
    from hybrid_asr.features.augment import AugmentConfig
    from hybrid_asr.features.storage import StoreConfig

    p = sub.add_parser("compute-features", help="manifests of a split -> feature store with per-speaker CMVN stats")
    p.add_argument("manifest_dir")
    p.add_argument("split")
    p.add_argument("out_dir")
    p.add_argument("--speed-perturb", type=number(float, many=True, gt=0), default=(),
                   help="comma-separated speed factors to add perturbed copies, e.g. 0.9,1.1 (training data)")
    p.add_argument("--augment", action="store_true",
                   help="augment the speed-perturbed copies (or add one augmented copy): padding with silence "
                   "and low-level noise, noise at random SNRs, band-limiting, gain (training data)")
    _add_shard_options(p)
    add_config_options(p, [FeatureConfig], (), "front end (FeatureConfig: kind fbank|mfcc; cmvn "
                       "utterance|speaker|global, the normalization models trained on this store use)")
    add_config_options(p, [AugmentConfig], (), "augmentation (AugmentConfig, with --augment)")
    add_config_options(p, [StoreConfig], (), "storage (StoreConfig: dtype float32|float16 of feats.npy)")
    p.set_defaults(func=_compute_features)


def _merge_feature_stores(args) -> int:
    from hybrid_asr.features.storage import merge_feature_stores

    merge_feature_stores(args.shard_dirs, args.out_dir)
    return 0


def add_merge_feature_stores(sub) -> None:
    p = sub.add_parser("merge-feature-stores", help="combine the stores of sharded 'compute-features' jobs into one")
    p.add_argument("out_dir")
    p.add_argument("shard_dirs", nargs="+", help="in shard-index order")
    p.set_defaults(func=_merge_feature_stores)


# ---------------------------------------------------------------- lang
def _prepare_lang(args) -> int:
    from hybrid_asr.data import read_split
    from hybrid_asr.errors import HybridAsrError
    from hybrid_asr.lang import LangConfig, cmudict_lexicon, prepare_lang, read_lexicon

    if args.arpa and not args.lexicon:
        raise HybridAsrError("prepare-lang --arpa needs --lexicon (the LM's words are looked up in it)")
    if args.arpa:
        texts = []
    elif args.lm_text:
        texts = _read_text_lines(args.lm_text)
    else:
        _, sups = read_split(Path(args.manifest_dir), args.train_split)
        texts = [s.text for s in sups]
    if args.lexicon:
        lexicon = read_lexicon(args.lexicon, keep_stress=args.keep_stress)
    elif args.graphemes or args.subwords:
        from hybrid_asr.lang.units import grapheme_lexicon, subword_lexicon

        words = sorted({w for t in texts for w in t.split()})
        if args.graphemes:
            lexicon = grapheme_lexicon(words)
        else:
            Path(args.out_dir).mkdir(parents=True, exist_ok=True)
            lexicon = subword_lexicon(words, texts, args.subwords, Path(args.out_dir) / "units.model")
    else:
        words = sorted({w for t in texts for w in t.split()})
        lexicon, missing = cmudict_lexicon(words, keep_stress=args.keep_stress)
        if missing:
            log.warning("%d words not in CMUdict (they map to <UNK>): %s", len(missing), " ".join(missing[:20]))
        if not lexicon.entries:
            raise HybridAsrError("no training word was found in CMUdict")
    prepare_lang(lexicon, texts, args.out_dir, LangConfig(**config_overrides(args, LangConfig)), args.arpa)
    return 0


def _read_text_lines(path) -> list:
    from hybrid_asr.text_files import read_clean_lines

    return [line for _, line in read_clean_lines(path)]


def add_prepare_lang(sub) -> None:
    from hybrid_asr.lang import LangConfig

    p = sub.add_parser("prepare-lang", help="lexicon + LM text (TRAIN transcripts or any text) -> lang dir "
                       "(phones, words, L, G)")
    p.add_argument("manifest_dir", help="manifests; the LM is trained on the --train-split transcripts only "
                   "(unless --lm-text)")
    p.add_argument("out_dir")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--lexicon", help="pronunciation dictionary (CMU/Sphinx .dic or Kaldi lexicon.txt)")
    src.add_argument("--cmudict", action="store_true", help="look the training words up in CMUdict")
    src.add_argument("--graphemes", action="store_true",
                     help="no dictionary: every word of the LM text spelled in letters (units instead of phones)")
    src.add_argument("--subwords", type=number(int, ge=2), metavar="N", default=None,
                     help="no dictionary: words split into N sentencepiece units trained on the LM text "
                     "(model saved as units.model)")
    p.add_argument("--train-split", default="train")
    p.add_argument("--keep-stress", action="store_true", help="keep ARPAbet stress digits")
    config_option(p, LangConfig, "sil_prob", help="probability of optional silence between words")
    config_option(p, LangConfig, "lm_order", help="n-gram order")
    p.add_argument("--lm-vocabulary", choices=["lexicon", "text"], default=None,
                   help="words the LM can emit: every lexicon word (default) or only those of the training text")
    config_option(p, LangConfig, "lm_prune", help="entropy-pruning threshold of the LM, e.g. 1e-7 (0: no pruning)")
    p.add_argument("--lm-text", default=None,
                   help="train the LM on this text (one sentence per line; e.g. domain text) instead of the "
                   "transcripts; with --cmudict its words are looked up")
    p.add_argument("--arpa", default=None,
                   help="use this ARPA LM (.arpa or .arpa.gz, e.g. LibriSpeech's 3-gram.pruned.1e-7) instead of "
                   "training one; needs --lexicon; n-grams with words the lexicon lacks are left out of G")
    p.set_defaults(func=_prepare_lang)


def _train_lm(args) -> int:
    from hybrid_asr.lang import LangConfig
    from hybrid_asr.lang.lm import train_arpa

    config = LangConfig(**config_overrides(args, LangConfig))
    train_arpa(_read_text_lines(args.text), args.out_arpa, config.lm_order, config.lm_prune)
    return 0


def add_train_lm(sub) -> None:
    from hybrid_asr.lang import LangConfig

    p = sub.add_parser("train-lm", help="Kneser-Ney n-gram LM (ARPA) from any text, optionally entropy-pruned")
    p.add_argument("text", help="one sentence per line, words separated by spaces")
    p.add_argument("out_arpa")
    config_option(p, LangConfig, "lm_order", "--order", help="n-gram order")
    config_option(p, LangConfig, "lm_prune", "--prune", help="entropy-pruning threshold (0: none)")
    p.set_defaults(func=_train_lm)


def _lm_perplexity(args) -> int:
    from hybrid_asr.lang.lm import lm_perplexity

    stats = lm_perplexity(args.arpa, _read_text_lines(args.text))
    print(f"{args.text}: {stats['sentences']} sentences, {stats['words']} words, {stats['oov_words']} OOV "
          f"({stats['oov_rate']:.2f}%), perplexity {stats['perplexity']:.2f} "
          f"({stats['perplexity_without_eos']:.2f} without </s>)")
    return 0


def add_lm_perplexity(sub) -> None:
    p = sub.add_parser("lm-perplexity", help="perplexity and OOV rate of an ARPA LM on held-out text")
    p.add_argument("arpa")
    p.add_argument("text", help="one sentence per line (never the text the LM was trained on)")
    p.set_defaults(func=_lm_perplexity)


# ---------------------------------------------------------------- align / train
def _align(args) -> int:
    from hybrid_asr.stages.align import flat_start, realign
    from hybrid_asr.features import FeatureStore
    from hybrid_asr.lang import Lang

    from hybrid_asr.stages.shards import Shard

    store, lang = FeatureStore(args.feats_dir), Lang(args.lang_dir)
    if args.flat_start:
        states = {k: v for k, v in (("num_states", args.num_states), ("sil_states", args.sil_states)) if v is not None}
        flat_start(store, lang, args.out_dir, **states, shard=Shard(args.index, args.count), nj=args.nj)
    else:
        realign(store, lang, args.model, args.out_dir, shard=Shard(args.index, args.count), nj=args.nj)
    return 0


def _add_spk2group_option(p) -> None:
    p.add_argument("--spk2group", default=None,
                   help="'<speaker> <group>' file (e.g. spk2gender, child/adult): WER per group too")


def _add_shard_options(p) -> None:
    from hybrid_asr.stages.shards import Shard

    p.add_argument("--nj", type=number(int, ge=1), default=1, help="parallel local jobs (processes), merged at the end")
    config_option(p, Shard, "count", "--num-shards", with_default=True, metavar="N",
                  help="split the utterances into this many shards (e.g. a Slurm array job) ...")
    config_option(p, Shard, "index", "--shard-index", with_default=True, metavar="I",
                  help="... and process only this one (0-based)")


def add_align(sub) -> None:

    p = sub.add_parser("align", help="alignments: flat start, or Viterbi with a trained model (k2)")
    p.add_argument("feats_dir")
    p.add_argument("lang_dir")
    p.add_argument("out_dir")
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--flat-start", action="store_true",
                     help="SIL on the quiet ends, equal split of the words' HMM states in between")
    how.add_argument("--model", help="model directory to align with")
    p.add_argument("--num-states", type=number(int, ge=1), default=None,
                   help="HMM states per phone (flat start; default: flat_start's)")
    p.add_argument("--sil-states", type=number(int, ge=1), default=None,
                   help="HMM states of SIL (flat start; default: flat_start's)")
    _add_shard_options(p)
    p.set_defaults(func=_align)


def _merge_alignments(args) -> int:
    from hybrid_asr.stages.align import merge_alignment_dirs

    merge_alignment_dirs(args.shard_dirs, args.out_dir)
    return 0


def add_merge_alignments(sub) -> None:
    p = sub.add_parser("merge-alignments", help="combine the alignment dirs of sharded 'align' jobs into one")
    p.add_argument("out_dir")
    p.add_argument("shard_dirs", nargs="+")
    p.set_defaults(func=_merge_alignments)


def _compare_alignments(args) -> int:
    from hybrid_asr.stages.align import compare_alignment_dirs

    for a in compare_alignment_dirs(args.reference_dir, args.ali_dirs):
        skipped = f"; {a.skipped} utterances of the reference not compared" if a.skipped else ""
        print(f"{a.ali_dir}: the phone of {a.percent:.1f}% of {a.frames} frames agrees with {args.reference_dir} "
              f"({a.utterances} utterances{skipped})")
    return 0


def add_compare_alignments(sub) -> None:
    p = sub.add_parser("compare-alignments", help="per-frame phone agreement of alignment dirs with a reference one")
    p.add_argument("reference_dir", help="alignment dir taken as right (e.g. a SAT GMM's)")
    p.add_argument("ali_dirs", nargs="+")
    p.set_defaults(func=_compare_alignments)


_MODEL_SKIP = ("feat_dim", "num_pdfs")


def _model_config(args, store):
    """The ``--model`` architecture's config from its options, sized for ``store`` and the
    alignments of ``args.ali_dir``. Raises HybridAsrError for options of another architecture,
    ValueError for values out of range."""
    from hybrid_asr.errors import HybridAsrError
    from hybrid_asr.models import NEURAL_MODEL_TYPES, config_class
    from hybrid_asr.stages.train import alignment_targets

    _, _, num_pdfs = alignment_targets(args.ali_dir)
    cls = config_class(args.model)
    wrong = unused_options(args, [c for c, _ in NEURAL_MODEL_TYPES.values()], cls, _MODEL_SKIP)
    if wrong:
        raise HybridAsrError(f"option(s) {', '.join('--' + w.replace('_', '-') for w in wrong)} do not apply to "
                             f"model type {args.model}")
    return cls(feat_dim=store.config.dim, num_pdfs=num_pdfs, **config_overrides(args, cls, _MODEL_SKIP))


def _train(args) -> int:
    from hybrid_asr.errors import HybridAsrError
    from hybrid_asr.features import FeatureStore
    from hybrid_asr.stages.train import train_stage
    from hybrid_asr.training import TrainConfig

    store = FeatureStore(args.feats_dir)
    try:
        model_config = _model_config(args, store)
        train_config = TrainConfig(**config_overrides(args, TrainConfig))
    except ValueError as e:
        raise HybridAsrError(f"invalid option: {e}") from None
    train_stage(store, args.ali_dir, args.out_dir, model_config, train_config, resume=args.resume)
    return 0


def add_train(sub) -> None:
    from hybrid_asr.models import NEURAL_MODEL_TYPES
    from hybrid_asr.training import TrainConfig

    p = sub.add_parser("train", help="train an acoustic model on alignments (frame cross-entropy) -> model dir",
                       description="Train any architecture on the alignments. Options left out take the "
                       "defaults of the model's and the training config dataclasses. Under torchrun "
                       "(e.g. torchrun --nproc_per_node 2 -m hybrid_asr.cli.main train ...) it trains "
                       "data-parallel.")
    p.add_argument("feats_dir")
    p.add_argument("ali_dir")
    p.add_argument("out_dir")
    p.add_argument("--model", choices=list(NEURAL_MODEL_TYPES), default="dnn", help="architecture (default dnn)")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in out_dir")
    add_config_options(p, [c for c, _ in NEURAL_MODEL_TYPES.values()], _MODEL_SKIP, "model (per architecture)")
    add_config_options(p, [TrainConfig], (), "training")
    p.set_defaults(func=_train)


def _train_sequence(args) -> int:
    from hybrid_asr.errors import HybridAsrError
    from hybrid_asr.features import FeatureStore
    from hybrid_asr.stages.sequence import sequence_train_config, sequence_train_stage
    from hybrid_asr.training import TrainConfig
    from hybrid_asr.training.sequence import SequenceConfig

    try:
        config = SequenceConfig(**config_overrides(args, SequenceConfig))
        train_config = sequence_train_config(**config_overrides(args, TrainConfig))
    except ValueError as e:
        raise HybridAsrError(f"invalid option: {e}") from None
    sequence_train_stage(args.model_dir, FeatureStore(args.feats_dir), args.lang_dir, args.ali_dir, args.out_dir,
                         config, train_config, resume=args.resume)
    return 0


def add_train_sequence(sub) -> None:
    from hybrid_asr.stages.sequence import SEQUENCE_TRAIN_DEFAULTS
    from hybrid_asr.training import TrainConfig
    from hybrid_asr.training.sequence import SequenceConfig

    p = sub.add_parser("train-sequence", help="fine-tune a cross-entropy model with LF-MMI or MMI -> model dir",
                       description="Sequence-discriminative training (k2) of a trained model: lattice-free MMI "
                       "with a phone-LM denominator (--criterion lfmmi) or MMI with the model's decoding graph as "
                       "denominator (--criterion mmi; run make-graph on the model first). The training options "
                       "default to TrainConfig's except " + ", ".join(f"{k} {v}" for k, v in
                                                                      SEQUENCE_TRAIN_DEFAULTS.items()) +
                       " (batch-size: output frames of whole utterances per step). Run make-graph on the result.")
    p.add_argument("model_dir", help="the cross-entropy model")
    p.add_argument("feats_dir", help="training features")
    p.add_argument("lang_dir", help="the model's lang dir")
    p.add_argument("ali_dir", help="alignments of the training features with the model's pdfs")
    p.add_argument("out_dir")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in out_dir")
    add_config_options(p, [SequenceConfig], (), "sequence training")
    add_config_options(p, [TrainConfig], ("label_smoothing", "chunk_frames"), "optimization (TrainConfig)",
                       SEQUENCE_TRAIN_DEFAULTS)
    p.set_defaults(func=_train_sequence)


def _train_chain(args) -> int:
    from hybrid_asr.errors import HybridAsrError
    from hybrid_asr.features import FeatureStore
    from hybrid_asr.stages.chain import chain_sequence_config, chain_train_config, chain_train_stage
    from hybrid_asr.training import TrainConfig
    from hybrid_asr.training.sequence import SequenceConfig

    store = FeatureStore(args.feats_dir)
    try:
        model_config = _model_config(args, store)
        config = chain_sequence_config(**config_overrides(args, SequenceConfig))
        train_config = chain_train_config(**config_overrides(args, TrainConfig))
    except ValueError as e:
        raise HybridAsrError(f"invalid option: {e}") from None
    chain_train_stage(store, args.ali_dir, args.lang_dir, args.out_dir, model_config, config, train_config,
                      resume=args.resume)
    return 0


def add_train_chain(sub) -> None:
    from hybrid_asr.models import NEURAL_MODEL_TYPES
    from hybrid_asr.stages.chain import CHAIN_SEQUENCE_DEFAULTS, CHAIN_TRAIN_DEFAULTS
    from hybrid_asr.training import TrainConfig
    from hybrid_asr.training.sequence import SequenceConfig

    p = sub.add_parser("train-chain", help="train a chain model from scratch with LF-MMI -> model dir",
                       description="A randomly initialized model trained with lattice-free MMI (k2) on senone "
                       "alignments of a chain topology and tree (convert-topology --num-states 1, build-tree "
                       "--frame-subsampling-factor 3, convert-ali), as Kaldi's chain recipes; give the model a "
                       "subsampling factor (e.g. --model tdnn --subsampling-factor 3). The model has no priors "
                       "and is decoded at acoustic scale 1.0 with self-loop scale 1.0 (stored in the directory). "
                       "The LF-MMI options default to SequenceConfig's except " +
                       ", ".join(f"{k} {v}" for k, v in CHAIN_SEQUENCE_DEFAULTS.items()) +
                       "; the training options to TrainConfig's except " +
                       ", ".join(f"{k} {v}" for k, v in CHAIN_TRAIN_DEFAULTS.items()) +
                       " (batch-size: output frames of whole utterances per step). Run make-graph on the result.")
    p.add_argument("feats_dir", help="training features")
    p.add_argument("ali_dir", help="senone alignments in the chain topology")
    p.add_argument("lang_dir", help="lang dir over the alignments' phones")
    p.add_argument("out_dir")
    p.add_argument("--model", choices=list(NEURAL_MODEL_TYPES), default="tdnn", help="architecture (default tdnn)")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in out_dir")
    add_config_options(p, [c for c, _ in NEURAL_MODEL_TYPES.values()], _MODEL_SKIP, "model (per architecture)")
    add_config_options(p, [SequenceConfig], ("criterion",), "LF-MMI", CHAIN_SEQUENCE_DEFAULTS)
    add_config_options(p, [TrainConfig], ("label_smoothing", "chunk_frames"), "optimization (TrainConfig)",
                       CHAIN_TRAIN_DEFAULTS)
    p.set_defaults(func=_train_chain)


# ---------------------------------------------------------------- graph / decode / score
def _make_graph(args) -> int:
    from hybrid_asr.graph import GraphConfig
    from hybrid_asr.stages.graph import make_graph, model_graph_config

    config = model_graph_config(args.model_dir, **config_overrides(args, GraphConfig))
    make_graph(args.model_dir, args.lang_dir, config, args.acoustic_scale)
    return 0


def add_make_graph(sub) -> None:
    from hybrid_asr.bundle import SearchConfig
    from hybrid_asr.graph import GraphConfig

    p = sub.add_parser("make-graph", help="decoding graph for a model dir: HLG (monophone) or HCLG (with a tree), "
                       "from its H and the L and G of a lang dir")
    p.add_argument("model_dir")
    p.add_argument("lang_dir")
    config_option(p, SearchConfig, "acoustic_scale", help="default acoustic scale stored with the graph")
    add_config_options(p, [GraphConfig], (), "graph")
    config_option(p, GraphConfig, "self_loop_scale", "--transition-scale", help=argparse.SUPPRESS)
    p.set_defaults(func=_make_graph)


def _print_lines(lines) -> None:
    """Print a stage's summary lines to stdout."""
    for line in lines:
        print(line)


def _decode_dataset(args) -> int:
    from hybrid_asr.stages.evaluate import evaluate_store

    from hybrid_asr.stages.shards import Shard

    from hybrid_asr.bundle import SearchConfig

    scores = evaluate_store(args.model_dir, args.feats_dir, args.out_dir, args.acoustic_scales, args.cmvn,
                            args.max_frames, args.store_best, Shard(args.index, args.count), args.nj,
                            args.chunk_frames, args.spk2group,
                            config_overrides(args, SearchConfig, ("acoustic_scale", "word_insertion_penalty")),
                            args.word_insertion_penalties)
    _print_lines(scores.lines)
    return 0


def add_decode_dataset(sub) -> None:
    from hybrid_asr.decoding.dataset import MAX_BATCH_FRAMES

    p = sub.add_parser("decode-dataset", help="decode a feature store and write hypotheses + WER reports")
    p.add_argument("model_dir")
    p.add_argument("feats_dir")
    p.add_argument("out_dir")
    p.add_argument("--acoustic-scales", type=number(float, many=True, gt=0), default=None,
                   help="comma-separated sweep (default: the model's search_config.json value)")
    p.add_argument("--word-insertion-penalties", type=number(float, many=True), default=None,
                   help="comma-separated sweep of the cost per word, each with every acoustic scale (Kaldi's "
                   "score.sh uses 0,0.5,1; default: the model's search_config.json value)")
    p.add_argument("--cmvn", choices=["utterance", "speaker", "global"], default=None,
                   help="override the model's CMVN mode")
    p.add_argument("--max-frames", type=number(int, ge=1), default=MAX_BATCH_FRAMES,
                   help="frames per k2 batch (default %(default)s)")
    p.add_argument("--store-best", action="store_true",
                   help="store the best acoustic scale (and word insertion penalty) of the sweep as the model's "
                   "default (decode on dev)")
    p.add_argument("--chunk-frames", type=number(int, ge=0), default=None,
                   help="recurrent models: score in chunks of N output frames (0: whole utterances) instead of "
                   "the model's decode_chunk_frames")
    _add_spk2group_option(p)
    _add_shard_options(p)
    _add_search_options(p, ("acoustic_scale", "word_insertion_penalty"))
    p.set_defaults(func=_decode_dataset)


def _rescore(args) -> int:
    from hybrid_asr.bundle import SearchConfig
    from hybrid_asr.stages.rescore import RescoreConfig, rescore

    config = RescoreConfig(**config_overrides(args, RescoreConfig))
    scores = rescore(args.model_dir, args.feats_dir, args.out_dir, args.new_lm, config, args.old_lm,
                     config_overrides(args, SearchConfig, ("backend", "sweep")))
    _print_lines(scores.lines)
    return 0


def add_rescore(sub) -> None:
    from hybrid_asr.stages.rescore import RescoreConfig

    p = sub.add_parser("rescore", help="first pass with the model's graph, k2 lattices, exact N-best lists, "
                       "rescored with another ARPA LM at several LM scales")
    p.add_argument("model_dir")
    p.add_argument("feats_dir")
    p.add_argument("out_dir")
    p.add_argument("new_lm", help="ARPA LM to rescore with (e.g. a higher order: train-lm --order 4)")
    config_option(p, RescoreConfig, "lm_scales", help="comma-separated scales of the new LM log-probability")
    config_option(p, RescoreConfig, "nbest", help="hypotheses per utterance")
    p.add_argument("--old-lm", default=None, help="the first-pass ARPA LM (default: the graph's lang dir lm.arpa)")
    _add_search_options(p, ("backend", "sweep"))
    p.set_defaults(func=_rescore)


def _merge_decodes(args) -> int:
    from hybrid_asr.stages.evaluate import merge_decode_dirs, score_decode_dir

    merge_decode_dirs(args.shard_dirs, args.out_dir)
    _print_lines(score_decode_dir(args.out_dir, args.model_dir, args.store_best, args.spk2group).lines)
    return 0


def add_merge_decodes(sub) -> None:
    p = sub.add_parser("merge-decodes", help="combine and score the decode dirs of sharded 'decode-dataset' jobs")
    p.add_argument("model_dir")
    p.add_argument("out_dir")
    p.add_argument("shard_dirs", nargs="+")
    p.add_argument("--store-best", action="store_true", help="store the best acoustic scale as the model's default")
    _add_spk2group_option(p)
    p.set_defaults(func=_merge_decodes)


def _score(args) -> int:
    from hybrid_asr.data.kaldi_dir import read_kaldi_map
    from hybrid_asr.errors import HybridAsrError
    from hybrid_asr.scoring import score_files, speaker_breakdowns, write_report

    result = score_files(args.ref, args.hyp, _normalizer(args).apply)
    if args.spk2group and not args.utt2spk:
        raise HybridAsrError("score: --spk2group needs --utt2spk")
    breakdowns = speaker_breakdowns(read_kaldi_map(args.utt2spk) if args.utt2spk else {},
                                    read_kaldi_map(args.spk2group) if args.spk2group else None)
    write_report(result, Path(args.out_dir), args.name, breakdowns)
    print(result.summary())
    if "group" in breakdowns:
        print(", ".join(f"{k} {r.wer:.2f}%" for k, r in result.breakdown(breakdowns["group"]).items()))
    return 0


def add_score(sub) -> None:
    p = sub.add_parser("score", help="WER/SER of a hypothesis text file against a reference (kaldialign)")
    p.add_argument("ref", help="Kaldi text file: <utt-id> words...")
    p.add_argument("hyp")
    p.add_argument("out_dir")
    p.add_argument("--name", default="wer")
    p.add_argument("--utt2spk", default=None, help="Kaldi utt2spk: the report gets a table of WER per speaker")
    _add_spk2group_option(p)
    _add_normalization_options(p)
    p.set_defaults(func=_score)


def _add_normalization_options(p) -> None:
    g = p.add_argument_group("text normalisation (applied to REF and HYP alike)")
    g.add_argument("--case", choices=["upper", "lower"], default=None, help="fold case")
    g.add_argument("--strip-punctuation", action="store_true", help="drop characters other than letters, digits, '")
    g.add_argument("--drop-words", default="", help="words to remove, e.g. fillers: \"UH UM <NOISE>\"")


def _normalizer(args):
    from hybrid_asr.scoring.analysis import TextNormalizer

    return TextNormalizer(args.case or "", args.strip_punctuation, tuple(args.drop_words.split()))


def _compare(args) -> int:
    from hybrid_asr.scoring import score_files
    from hybrid_asr.scoring.analysis import compare, format_comparison

    a, b = (score_files(args.ref, h, _normalizer(args).apply) for h in (args.hyp_a, args.hyp_b))
    names = args.names.split(",") if args.names else ["A", "B"]
    extra = {k: v for k, v in (("resamples", args.resamples), ("seed", args.seed)) if v is not None}
    lines = format_comparison(compare(a, b, **extra), *names[:2])
    if args.out:
        from hybrid_asr.utils import write_text_atomic

        write_text_atomic(args.out, "\n".join(lines) + "\n")
    print("\n".join(lines[:5]))
    return 0


def add_compare(sub) -> None:
    import inspect

    from hybrid_asr.scoring.analysis import compare

    defaults = {k: v.default for k, v in inspect.signature(compare).parameters.items()}
    p = sub.add_parser("compare", help="two systems on the same references: utterances better/worse and a "
                       "bootstrap confidence interval of the WER difference")
    p.add_argument("ref")
    p.add_argument("hyp_a")
    p.add_argument("hyp_b")
    p.add_argument("--names", default=None, help="names of the two systems, e.g. dnn,tdnn")
    p.add_argument("--resamples", type=number(int, ge=1), default=None,
                   help=f"bootstrap resamples of the utterances (default {defaults['resamples']})")
    p.add_argument("--seed", type=number(int, ge=0), default=None, help=f"bootstrap seed (default {defaults['seed']})")
    p.add_argument("--out", default=None, help="write the full comparison (with the utterance lists) here")
    _add_normalization_options(p)
    p.set_defaults(func=_compare)


def _decode(args) -> int:
    from hybrid_asr.bundle import SearchConfig
    from hybrid_asr.features.trim import TrimConfig
    from hybrid_asr.stages.decode_audio import DecodeOptions, ctm_lines, decode_inputs, output_id

    times = args.output == "ctm" or args.word_times
    trim = None if args.no_trim else TrimConfig(**config_overrides(args, TrimConfig))
    given = config_overrides(args, DecodeOptions, ("word_times", "confidences", "cmvn", "trim", "allow_pipes"))
    options = DecodeOptions(word_times=times, confidences=args.confidence or args.output == "ctm", cmvn=args.cmvn,
                            trim=trim, allow_pipes=args.allow_pipes, **given)
    failures = total = 0
    for result in decode_inputs(args.model_dir, args.inputs, config_overrides(args, SearchConfig, ("sweep",)), options):
        seg, utt = result.segment, output_id(result.segment.id)
        total += 1
        if result.error is not None:
            failures += 1
            print(f"hybrid-asr decode: error: {result.error}", file=sys.stderr)
            if args.output == "json":
                print(json.dumps({"id": utt, "file": str(seg.path), "error": result.error}))
        elif args.output == "json":
            entry = {"id": utt, "file": str(seg.path), "recording": output_id(seg.recording), "text": result.text,
                     "words": [w.word for w in result.words]}
            if times or args.confidence:
                entry["word_info"] = [{k: v for k, v in vars(w).items() if v is not None} for w in result.words]
            if args.nbest:
                entry["nbest"] = [[{"text": t, "posterior": p} for t, p in piece] for piece in result.nbest]
            print(json.dumps(entry))
        elif args.output == "ctm":
            for line in ctm_lines(result):
                print(line)
        else:
            print(f"{utt}\t{result.text}")
            for piece in result.nbest:
                for rank, (text, posterior) in enumerate(piece, 1):
                    print(f"{utt}\t{rank}\t{posterior:.3f}\t{text}")
        sys.stdout.flush()
    print(f"hybrid-asr decode: {total} segments, {total - failures} decoded, {failures} failed", file=sys.stderr)
    return 2 if failures else 0


def add_decode(sub) -> None:
    from hybrid_asr.features.trim import TrimConfig
    from hybrid_asr.stages.decode_audio import DecodeOptions

    p = sub.add_parser("decode", help="recognise audio: files, directories (recursive), a Kaldi wav.scp (with "
                       "segments beside it) or a lhotse recording/cut manifest")
    p.add_argument("model_dir")
    p.add_argument("inputs", nargs="+", metavar="INPUT")
    p.add_argument("--output", choices=["text", "json", "ctm"], default="text",
                   help="text: '<id><TAB><words>' per segment; json: one object per segment; ctm: '<recording> 1 "
                   "<start> <duration> <word> <confidence>' per word (times in seconds)")
    p.add_argument("--word-times", action="store_true", help="word start times and durations (json)")
    p.add_argument("--confidence", action="store_true", help="a posterior per word (json; always in ctm)")
    config_option(p, DecodeOptions, "nbest", metavar="N",
                  help="N-best hypotheses with their posteriors, per piece of audio (k2 lattice)")
    config_option(p, DecodeOptions, "max_segment_seconds", metavar="SECONDS",
                  help="longer audio is cut at its quietest moments into pieces of at most this length")
    config_option(p, DecodeOptions, "batch_size", metavar="N", help="pieces of audio searched together (one k2 batch)")
    p.add_argument("--cmvn", choices=["global", "utterance"], default=None,
                   help="override the model's CMVN mode: the file's own statistics or the training ones")
    p.add_argument("--no-trim", action="store_true",
                   help="decode each piece whole instead of trimming the silence or steady noise around its speech")
    config_option(p, TrimConfig, "margin_seconds", "--trim-margin", metavar="SECONDS",
                  help="audio kept around the speech when trimming")
    _add_allow_pipes(p)
    _add_search_options(p, ("sweep",))
    p.set_defaults(func=_decode)


def _add_search_options(p, skip=()) -> None:
    from hybrid_asr.bundle import SearchConfig

    add_config_options(p, [SearchConfig], skip, "search (defaults: the model's search_config.json, else these)")


def _build_tree(args) -> int:
    from hybrid_asr.features import FeatureStore
    from hybrid_asr.stages.tree import build_tree_stage
    from hybrid_asr.hmm.tree import TreeConfig


    from hybrid_asr.stages.shards import Shard

    config = TreeConfig(merge=not args.no_merge, **config_overrides(args, TreeConfig, ("merge",)))
    build_tree_stage(FeatureStore(args.feats_dir), args.ali_dir, args.out_dir, config, args.classes,
                     Shard(args.index, args.count), args.nj, args.from_stats or ())
    return 0


def add_build_tree(sub) -> None:
    from hybrid_asr.hmm.tree import TreeConfig

    p = sub.add_parser("build-tree", help="phonetic decision tree (triphone states -> senones) from alignments")
    p.add_argument("feats_dir")
    p.add_argument("ali_dir", help="monophone alignment directory")
    p.add_argument("out_dir")
    config_option(p, TreeConfig, "num_leaves", help="leaf budget before merging")
    config_option(p, TreeConfig, "min_count", help="minimum frames per leaf")
    config_option(p, TreeConfig, "min_gain", help="minimum split gain and merge threshold (nats)")
    config_option(p, TreeConfig, "frame_subsampling_factor",
                  help="statistics from every f-th frame only (a chain model's tree: 3)")
    p.add_argument("--no-merge", action="store_true", help="skip the bottom-up merge")
    p.add_argument("--classes", default=None, help="hand-written phone classes, e.g. lexicon/arpabet_classes.txt")
    _add_shard_options(p)
    p.add_argument("--from-stats", nargs="+", default=None, metavar="SHARD_DIR",
                   help="build from the statistics of these shard directories (build-tree --num-shards K "
                   "--shard-index i, for i in 0..K-1), summed, instead of accumulating")
    p.set_defaults(func=_build_tree)


def _convert_ali(args) -> int:
    from hybrid_asr.stages.align import convert_to_senones

    from hybrid_asr.stages.shards import Shard

    convert_to_senones(args.ali_dir, args.tree_dir, args.out_dir, Shard(args.index, args.count), args.nj)
    return 0


def add_convert_ali(sub) -> None:
    p = sub.add_parser("convert-ali", help="monophone alignments -> senone alignments with a decision tree")
    p.add_argument("ali_dir")
    p.add_argument("tree_dir")
    p.add_argument("out_dir")
    _add_shard_options(p)
    p.set_defaults(func=_convert_ali)


def _copy_ali(args) -> int:
    from hybrid_asr.features import FeatureStore
    from hybrid_asr.stages.align import copy_alignments

    copy_alignments(args.ali_dir, FeatureStore(args.feats_dir), args.out_dir, args.suffix, args.model)
    return 0


def add_copy_ali(sub) -> None:
    from hybrid_asr.features.augment import COPY_SUFFIX

    p = sub.add_parser("copy-ali", help="the alignment of a store of originals and their augmented copies of the same "
                       "length (compute-features --augment: <id>_aug), each copy labelled as its original (Kaldi's "
                       "copy_ali_dir.sh); a SAT alignment's transforms kept, the copies' speakers' estimated")
    p.add_argument("ali_dir", help="alignment of the originals")
    p.add_argument("feats_dir", help="features of the originals and their copies")
    p.add_argument("out_dir")
    p.add_argument("--suffix", default=COPY_SUFFIX, help=f"what a copy's id adds to its original's (default {COPY_SUFFIX})")
    p.add_argument("--model", default=None, help="the SAT model that made ali_dir (needed when it has fmllr.npz)")
    p.set_defaults(func=_copy_ali)


def _convert_topology(args) -> int:
    from hybrid_asr.stages.align import convert_topology

    convert_topology(args.ali_dir, args.out_dir, args.num_states)
    return 0


def add_convert_topology(sub) -> None:
    p = sub.add_parser("convert-topology", help="alignments -> monophone alignments of another number of HMM "
                       "states per phone (1: a chain model's topology), the phones and their times kept")
    p.add_argument("ali_dir", help="any alignment directory with phone marks (monophone or senones)")
    p.add_argument("out_dir")
    p.add_argument("--num-states", type=number(int, ge=1), required=True,
                   help="HMM states of every phone (each phone's frames shared evenly between them)")
    p.set_defaults(func=_convert_topology)


def _plot_alignment(args) -> int:
    from hybrid_asr.align.plot import plot_alignment

    plot_alignment(args.ali_dir, args.feats_dir, args.utt_id, args.out_png)
    return 0


def add_plot_alignment(sub) -> None:
    p = sub.add_parser("plot-alignment", help="spectrogram of one utterance with its phone boundaries (PNG)")
    p.add_argument("ali_dir")
    p.add_argument("feats_dir")
    p.add_argument("utt_id")
    p.add_argument("out_png")
    p.set_defaults(func=_plot_alignment)


def _ali_to_ctm(args) -> int:
    from hybrid_asr.align.ctm import supervision_placements, write_alignment_ctm
    from hybrid_asr.errors import InputError

    placements = None
    if args.supervisions:
        from lhotse import SupervisionSet

        try:
            placements = supervision_placements(SupervisionSet.from_file(args.supervisions))
        except Exception as e:  # lhotse raises several types for an unreadable manifest
            raise InputError(args.supervisions, f"not a lhotse supervision manifest: {e}") from None
    n = write_alignment_ctm(args.ali_dir, args.out, args.level, args.frame_shift, placements)
    log.info("wrote %s segments of %d utterances to %s", args.level, n, args.out)
    return 0


def add_ali_to_ctm(sub) -> None:

    p = sub.add_parser("ali-to-ctm", help="phone or senone boundaries of an alignment dir as CTM")
    p.add_argument("ali_dir")
    p.add_argument("out", help="CTM file: <utt> 1 <start s> <duration s> <phone or senone>")
    p.add_argument("--level", choices=["phone", "senone"], default="phone")
    p.add_argument("--frame-shift", type=number(float, gt=0), default=None,
                   help="seconds per frame (default: the alignment dir's frame_shift file)")
    p.add_argument("--supervisions", default=None,
                   help="lhotse supervisions manifest (e.g. data/manifests/supervisions_train.jsonl.gz): lines "
                        "name the recording and times are relative to it (for corpora with Kaldi segments)")
    p.set_defaults(func=_ali_to_ctm)


def _align_audio(args) -> int:
    from hybrid_asr.align.audio import TranscriptCheckConfig, align_audio
    from hybrid_asr.align.ctm import alignment_segments, ctm_lines
    from hybrid_asr.bundle import ModelBundle
    from hybrid_asr.lang import Lang

    bundle = ModelBundle.load(args.model_dir)
    lang = Lang(args.lang_dir)
    bundle.check_lang(args.model_dir, args.lang_dir, lang.phone_pairs)
    check = TranscriptCheckConfig(**config_overrides(args, TranscriptCheckConfig))
    ali, score = align_audio(bundle, lang, args.audio, args.text, args.cmvn)
    shift = bundle.feature_config.frame_shift_ms / 1000
    utt = Path(args.audio).stem
    for level in ("phone", "senone") if args.level == "both" else (args.level,):
        for line in ctm_lines(utt, alignment_segments(ali.pdfs, ali.phone_marks, bundle.topology, level), shift):
            print(line if args.level != "both" else f"{line} {level}")
    print(f"hybrid-asr align-audio: {args.audio}: {score.frames} frames, log-likelihood per frame "
          f"{score.log_likelihood:.3f}, {score.gap:.3f} per frame below the best senones", file=sys.stderr)
    gmm = bundle.model.config.type == "gmm"
    if check.suspicious(score, gmm):
        log.warning("%s: the transcript fits the audio badly (%.3f per frame below the best senones, under %g): "
                    "is it this file's transcript?", args.audio, score.gap, check.threshold(gmm))
    return 0


def add_align_audio(sub) -> None:
    from hybrid_asr.align.audio import TranscriptCheckConfig

    p = sub.add_parser("align-audio", help="forced alignment of one audio file with its transcript, as CTM")
    p.add_argument("model_dir", help="monophone or senone model directory")
    p.add_argument("lang_dir")
    p.add_argument("audio")
    p.add_argument("text", help="transcript (quote it)")
    p.add_argument("--level", choices=["phone", "senone", "both"], default="phone",
                   help="segments to print; 'both' adds the level as a sixth field")
    p.add_argument("--cmvn", choices=["global", "utterance"], default=None,
                   help="override the model's CMVN mode")
    config_option(p, TranscriptCheckConfig, "max_gap", "--warn-gap", metavar="NATS",
                  help="warn when the alignment's log-likelihood per frame is this far below the best senones' "
                  "(neural models)")
    config_option(p, TranscriptCheckConfig, "max_gap_gmm", "--warn-gap-gmm", metavar="NATS",
                  help="the same for GMM models")
    p.set_defaults(func=_align_audio)


def _train_gmm(args) -> int:
    from hybrid_asr.errors import HybridAsrError
    from hybrid_asr.features import FeatureStore
    from hybrid_asr.gmm import GmmConfig
    from hybrid_asr.lang import Lang
    from hybrid_asr.hmm.tree import TreeConfig
    from hybrid_asr.stages.gmm import train_config_class, train_gmm_stage
    from hybrid_asr.training.gmm import LdaMlltTrainConfig, SatTrainConfig

    try:
        cls = train_config_class(args.ali_dir, args.lda_mllt, args.sat is not None)
        config = cls(**config_overrides(args, cls))
        gmm_config = GmmConfig(**config_overrides(args, GmmConfig))
        tree_config = TreeConfig(**config_overrides(args, TreeConfig))
    except ValueError as e:
        raise HybridAsrError(f"train-gmm: invalid option: {e}") from None
    if args.lda_mllt and args.sat is not None:
        raise HybridAsrError("train-gmm: --lda-mllt and --sat are two different systems: give one")
    unused = unused_options(args, [LdaMlltTrainConfig, SatTrainConfig, TreeConfig], cls,
                            [f.name for f in dataclasses.fields(TreeConfig)] if args.lda_mllt or args.sat else [])
    if unused:
        raise HybridAsrError(f"train-gmm: {', '.join('--' + n.replace('_', '-') for n in unused)} do not apply to "
                             f"this system ({cls.__name__})")
    train_gmm_stage(FeatureStore(args.feats_dir), Lang(args.lang_dir), args.ali_dir, args.out_dir, config, gmm_config,
                    tree_config, args.sat)
    return 0


def add_train_gmm(sub) -> None:
    from hybrid_asr.gmm import GmmConfig
    from hybrid_asr.hmm.tree import TreeConfig
    from hybrid_asr.training.gmm import GmmTrainConfig, LdaMlltTrainConfig, SatTrainConfig, TriGmmTrainConfig

    p = sub.add_parser("train-gmm", help="monophone, triphone or LDA+MLLT GMM-HMM by Viterbi EM with realignment "
                       "(Kaldi train_mono.sh, train_deltas.sh, train_lda_mllt.sh) -> model dir",
                       description="Train diagonal-covariance GMMs from a flat-start alignment ('align --flat-start': "
                       "monophones, as Kaldi's train_mono.sh) or from senone alignments with a tree ('build-tree' "
                       "on a monophone GMM's alignment, then 'convert-ali': triphones, as train_deltas.sh; with "
                       "--lda-mllt, the alignment of a triphone GMM: LDA+MLLT on spliced frames and a new tree, as "
                       "train_lda_mllt.sh), realigning with k2 and mixing up. The model directory works with "
                       "align, make-graph, decode-dataset and decode. Kaldi's GMMs read MFCC with per-speaker CMVN "
                       "(compute-features --kind mfcc --cmvn speaker), with --deltas except for LDA+MLLT.")
    p.add_argument("feats_dir")
    p.add_argument("lang_dir")
    p.add_argument("ali_dir", help="flat-start or senone alignment directory")
    p.add_argument("out_dir")
    p.add_argument("--lda-mllt", action="store_true", help="train an LDA+MLLT system on a new tree (senone alignments)")
    p.add_argument("--sat", metavar="LDA_MLLT_MODEL", help="speaker-adaptive training with per-speaker fMLLR on a new "
                   "tree (Kaldi train_sat.sh), from this LDA+MLLT model and its alignment ali_dir")
    add_config_options(p, [GmmTrainConfig, TriGmmTrainConfig, LdaMlltTrainConfig, SatTrainConfig], (),
                       "training (GmmTrainConfig; TriGmmTrainConfig for senone alignments; LdaMlltTrainConfig "
                       "with --lda-mllt; SatTrainConfig with --sat)")
    add_config_options(p, [TreeConfig], (), "the new tree of --lda-mllt and --sat (TreeConfig)")
    add_config_options(p, [GmmConfig], (), "update and mix-up (GmmConfig)")
    p.set_defaults(func=_train_gmm)


def _adapt_features(args) -> int:
    from hybrid_asr.errors import HybridAsrError
    from hybrid_asr.stages.fmllr import FmllrDecodeConfig, adapt_features

    try:
        config = FmllrDecodeConfig(**config_overrides(args, FmllrDecodeConfig))
    except ValueError as e:
        raise HybridAsrError(f"adapt-features: invalid option: {e}") from None
    adapt_features(args.model_dir, args.lang_dir, args.feats_dir, args.out_dir, args.transcripts, config,
                   args.transforms)
    return 0


def add_adapt_features(sub) -> None:
    from hybrid_asr.stages.fmllr import FmllrDecodeConfig

    p = sub.add_parser("adapt-features", help="speaker-adapted (LDA+MLLT+fMLLR) frames of a SAT GMM -> feature store",
                       description="Write the frames a SAT GMM model (train-gmm --sat) reads after each speaker's "
                       "fMLLR transform as a new feature store (kind fmllr), for neural models on speaker-adapted "
                       "features. Transforms come from the store's reference transcripts (--transcripts reference: "
                       "training data only) or from a speaker-independent first pass through the model's graph "
                       "(first-pass, the default: dev and test sets).")
    p.add_argument("model_dir", help="SAT GMM model directory (with si_model/; with a graph for first passes)")
    p.add_argument("lang_dir", help="lang directory of the alignment graphs")
    p.add_argument("feats_dir", help="the feature store the SAT model reads")
    p.add_argument("out_dir")
    p.add_argument("--transcripts", choices=["first-pass", "reference"], default="first-pass",
                   help="where the transcripts the transforms are estimated from come from (default first-pass)")
    p.add_argument("--transforms", metavar="ALI_DIR", default=None,
                   help="use the per-speaker transforms of an alignment of this store by this model "
                   "('align --model MODEL_DIR' writes fmllr.npz; Kaldi's --transform-dir) instead of estimating them")
    add_config_options(p, [FmllrDecodeConfig], (), "estimation (FmllrDecodeConfig)")
    p.set_defaults(func=_adapt_features)


REGISTRY = [add_prepare, add_download_librispeech_lm, add_import_kaldi_dir, add_hold_out_speakers, add_compute_features, add_merge_feature_stores,
            add_prepare_lang, add_train_lm, add_lm_perplexity, add_align, add_merge_alignments, add_compare_alignments,
            add_train, add_train_sequence, add_train_chain, add_train_gmm, add_adapt_features,
            add_make_graph, add_decode_dataset, add_merge_decodes, add_rescore, add_score, add_compare, add_decode, add_plot_alignment,
            add_build_tree, add_convert_ali, add_copy_ali, add_convert_topology, add_ali_to_ctm, add_align_audio]
