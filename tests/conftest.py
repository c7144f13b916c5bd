"""Shared fixtures: paths of the shared corpora and a tiny toy lang directory.

The corpus tests skip when ``../shared/data`` (or ``$HYBRID_ASR_SHARED_DATA``) lacks a corpus;
with ``HYBRID_ASR_REQUIRE_CORPORA=1`` (set by ``.ci/run``) a missing corpus fails the session
instead, so that CI cannot go green on skipped work.
"""

import os
from pathlib import Path

os.environ.setdefault("MKL_DEBUG_CPU_TYPE", "5")

import hybrid_asr  # noqa: E402,F401  - first: it loads kaldi-hmm-gmm before torchaudio (hybrid_asr.native)
import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

SHARED = Path(os.environ.get("HYBRID_ASR_SHARED_DATA") or Path(__file__).resolve().parents[1].parent / "shared" / "data")
AN4 = SHARED / "an4"
FSDD = SHARED / "fsdd"
REQUIRE_CORPORA = os.environ.get("HYBRID_ASR_REQUIRE_CORPORA") == "1"


def corpus_mark(path: Path):
    """Module mark of tests that need a shared corpus: skip without it, unless corpora are
    required (then :func:`pytest_sessionstart` has already failed the run)."""
    return pytest.mark.skipif(not REQUIRE_CORPORA and not path.is_dir(), reason=f"shared corpus {path} not present")


def pytest_sessionstart(session):
    if REQUIRE_CORPORA:
        missing = [str(p) for p in (AN4, FSDD) if not p.is_dir()]
        if missing:
            raise pytest.UsageError("HYBRID_ASR_REQUIRE_CORPORA=1 but corpora are missing: " + ", ".join(missing))


@pytest.fixture(scope="session")
def toy_lang(tmp_path_factory):
    """Lang dir over a 3-word lexicon (one homophone pair) with a bigram LM on toy text."""
    from hybrid_asr.lang import Lang, LangConfig, Lexicon, prepare_lang

    lexicon = Lexicon([("AB", ("A", "B")), ("BA", ("B", "A")), ("A", ("A",)), ("AA", ("A",))])
    out = tmp_path_factory.mktemp("lang")
    prepare_lang(lexicon, ["AB BA", "A AB", "BA A AB", "AA"], out, LangConfig(sil_prob=0.5, lm_order=2))
    return Lang(out)


@pytest.fixture(scope="session")
def toy_topo(toy_lang):
    """Monophone topology over the toy phones: SIL 3 states, others 2 states."""
    from hybrid_asr.hmm import HmmTopology

    return HmmTopology.create(toy_lang.phones, [toy_lang.phone_table[p] for p in toy_lang.phones], {"SIL": 3}, 2)


FSDD_SPEAKERS = ["george", "jackson", "lucas"]


def run(*args):
    """``hybrid-asr ARGS`` in this process (one thread); asserts exit status 0."""
    from hybrid_asr.cli.main import main

    assert main(["--num-threads", "1", *map(str, args)]) == 0


@pytest.fixture(scope="session")
def fsdd_exp(tmp_path_factory):
    """A small FSDD monophone system trained through the command line, as the recipe does:
    manifests, fbank (8 kHz, 23 bins), CMUdict lang, flat start, two DNN rounds, HLG, dataset
    decode. Directories: manifests, fbank/{train,test}, lang, ali0, dnn1, ali1, dnn2, decode."""
    from hybrid_asr.data import prepare_fsdd, write_split

    if not FSDD.is_dir():
        pytest.skip(f"shared corpus {FSDD} not present")
    d = tmp_path_factory.mktemp("fsdd")
    for split, (recs, sups) in prepare_fsdd(FSDD, speakers=FSDD_SPEAKERS, max_per_digit_speaker=12).items():
        write_split(d / "manifests", split, recs, sups)
    for split in ("train", "test"):
        run("compute-features", d / "manifests", split, d / "fbank" / split, "--sample-rate", 8000,
            "--num-mel-bins", 23)
    run("prepare-lang", d / "manifests", d / "lang", "--cmudict", "--lm-order", 1)
    run("align", d / "fbank/train", d / "lang", d / "ali0", "--flat-start")
    common = ["--hidden-dim", 256, "--num-layers", 2, "--left-context", 4, "--right-context", 4, "--lr", 2e-3,
              "--batch-size", 128]
    run("train", d / "fbank/train", d / "ali0", d / "dnn1", "--epochs", 4, *common)
    run("align", d / "fbank/train", d / "lang", d / "ali1", "--model", d / "dnn1")
    run("train", d / "fbank/train", d / "ali1", d / "dnn2", "--epochs", 5, *common)
    run("make-graph", d / "dnn2", d / "lang", "--acoustic-scale", 0.5)
    run("decode-dataset", d / "dnn2", d / "fbank/test", d / "decode", "--acoustic-scales", "0.5")
    return d


def two_class_task(root: Path, utterances) -> Path:
    """A training task for engine tests: a feature store (8 kHz, 23 bins) of ``utterances``
    (``(utt_id, speaker, float32 [N] wave)``) in ``root/feats`` and an alignment dir
    ``root/ali`` labelling each utterance's first half 0 and second half 1."""
    import numpy as np

    from hybrid_asr.features import FeatureConfig, FeatureStore, compute_feature_store
    from hybrid_asr.hmm import HmmTopology
    from hybrid_asr.hmm.alignment import Alignments

    segs = [(u, s, "X", lambda rate, w=wave: w) for u, s, wave in utterances]
    compute_feature_store(segs, FeatureConfig(sample_rate=8000, num_mel_bins=23), root / "feats")
    store = FeatureStore(root / "feats")
    alis = {u.id: np.array([0] * (u.frames // 2) + [1] * (u.frames - u.frames // 2), dtype=np.int32)
            for u in store.utterances}
    HmmTopology(["SIL"], [1], [2]).save(root / "ali" / "topology.json")
    Alignments(alis).save(root / "ali" / "ali.npz")
    return root


@pytest.fixture(scope="session")
def an4_exp(tmp_path_factory):
    """A small AN4 monophone system trained through the command line as the recipe's first rounds
    are: manifests, the recipe's dev speakers held out (hold-out-speakers --fraction 0.1, women
    and men in proportion), fbank of train_nodev (no speed perturbation) and dev, lang from
    AN4's dictionary, flat start, two rounds of a small DNN (2 x 256), its HLG. Directories:
    manifests, fbank/{train_nodev,dev}, lang, ali0, dnn1, ali1, dnn2."""
    if not AN4.is_dir():
        pytest.skip(f"shared corpus {AN4} not present")
    d = tmp_path_factory.mktemp("an4")
    m = d / "manifests"
    run("prepare", "an4", m, "--corpus-dir", AN4)
    run("hold-out-speakers", m, "--source", "train", "--rest", "train_nodev", "--dev", "dev", "--fraction", 0.1,
        "--groups", m / "spk2gender")
    for split in ("train_nodev", "dev"):
        run("compute-features", m, split, d / "fbank" / split)
    run("prepare-lang", m, d / "lang", "--lexicon", m / "an4.dic", "--train-split", "train_nodev", "--lm-order", 1)
    run("align", d / "fbank/train_nodev", d / "lang", d / "ali0", "--flat-start")
    common = ["--hidden-dim", 256, "--num-layers", 2, "--batch-size", 256]
    run("train", d / "fbank/train_nodev", d / "ali0", d / "dnn1", "--epochs", 2, *common)
    run("align", d / "fbank/train_nodev", d / "lang", d / "ali1", "--model", d / "dnn1")
    run("train", d / "fbank/train_nodev", d / "ali1", d / "dnn2", "--epochs", 3, *common)
    run("make-graph", d / "dnn2", d / "lang")
    return d
