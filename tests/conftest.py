"""Shared fixtures: paths of the shared corpora and a tiny toy lang directory."""

import os
from pathlib import Path

os.environ.setdefault("MKL_DEBUG_CPU_TYPE", "5")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
AN4 = SHARED / "an4"
FSDD = SHARED / "fsdd"


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
