"""recipes/mini_librispeech/run.sh end to end on a few AN4 recordings laid out as the downloaded
corpus is: FLAC files in ``<part>/<speaker>/<chapter>/`` with ``<speaker>-<chapter>.trans.txt``,
and an LM folder holding ``librispeech-lexicon.txt`` (tab-separated, stress digits) and a gzipped
ARPA 3-gram named as openslr.org 11 names it. Nothing is downloaded."""

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import soundfile

from conftest import AN4, corpus_mark

pytestmark = corpus_mark(AN4)

ROOT = Path(__file__).resolve().parents[1]


def _librispeech_fixture(root: Path) -> Path:
    """The corpus folder (train-clean-5: 5 speakers, dev-clean-2: 2 speakers, up to 16 utterances each)
    and the LM folder."""
    from hybrid_asr.data import prepare_an4
    from hybrid_asr.lang import read_lexicon
    from hybrid_asr.lang.lm import train_arpa

    splits = prepare_an4(AN4)
    recs, sups = splits["train"]
    speakers = sorted({s.speaker for s in sups})
    parts = {"train-clean-5": speakers[:5], "dev-clean-2": speakers[5:7]}
    texts = []
    for part, chosen in parts.items():
        for k, spk in enumerate(chosen):
            number = 100 + 10 * k + (0 if part.startswith("train") else 5)  # LibriSpeech speaker ids are numbers
            chapter = root / "corpus" / part / str(number) / "7"
            chapter.mkdir(parents=True)
            lines = []
            mine = sorted((s for s in sups if s.speaker == spk), key=lambda s: s.id)[:16]
            for i, s in enumerate(mine):
                utt = f"{number}-7-{i:04d}"
                audio = recs[s.recording_id].load_audio()[0]
                soundfile.write(chapter / f"{utt}.flac", audio, 16000, format="FLAC")
                lines.append(f"{utt} {s.text}\n")
                if part.startswith("train"):
                    texts.append(s.text)
            (chapter / f"{number}-7.trans.txt").write_text("".join(lines))
    lm = root / "lm"
    lm.mkdir()
    lexicon = read_lexicon(AN4 / "etc" / "an4.dic")
    (lm / "librispeech-lexicon.txt").write_text("".join(
        f"{w}\t{' '.join(p + ('1' if p[0] in 'AEIOU' else '') for p in pron)}\n" for w, pron in lexicon.entries))
    train_arpa(texts, lm / "lm.arpa", order=3)
    (lm / "3-gram.pruned.3e-7.arpa.gz").write_bytes(gzip.compress((lm / "lm.arpa").read_bytes()))
    return root


def test_mini_librispeech_recipe_runs_end_to_end_on_the_corpus_layout(tmp_path):
    fixture = _librispeech_fixture(tmp_path / "fixture")
    recipe = tmp_path / "recipe"
    (recipe / "recipes").mkdir(parents=True)
    for d in ("mini_librispeech", "common"):
        subprocess.run(["cp", "-r", str(ROOT / "recipes" / d), str(recipe / "recipes" / d)], check=True)
    (recipe / ".venv").symlink_to(ROOT / ".venv") if (ROOT / ".venv").is_dir() else None
    (recipe / "lexicon").symlink_to(ROOT / "lexicon")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    cmd = ["bash", str(recipe / "recipes/mini_librispeech/run.sh"), "--corpus-dir", str(fixture / "corpus"),
           "--lm-dir", str(fixture / "lm"), "--threads", "2", "--cd-leaves", "80", "--cd-epochs", "8",
           "--gmm-opts", "--num-iters 13 --max-iter-inc 8 --total-gauss 300 --realign-iters 4,8",
           "--gmm-acoustic-scales", "0.06,0.1", "--acoustic-scales", "0.1,0.2", "--sequence", "none",
           "--cd-arch-opts", "--hidden-dim 128 --chunk-frames 16"]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1500)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = recipe / "recipes" / "mini_librispeech"
    manifests = out / "data" / "manifests"
    assert {p.name for p in manifests.glob("supervisions_*")} >= {
        "supervisions_train-clean-5.jsonl.gz", "supervisions_dev-clean-2.jsonl.gz"}
    lang = json.loads((out / "data" / "lang" / "lang.json").read_text())
    assert lang["lm_order"] == 3  # the given ARPA's order, not a trained one
    assert (out / "data" / "lang" / "lm.arpa").read_text() == (fixture / "lm" / "lm.arpa").read_text()
    n_dev = sum(len(t.read_text().splitlines()) for t in (fixture / "corpus" / "dev-clean-2").rglob("*.trans.txt"))
    for model in ("tri3", "tdnn_fmllr"):  # trained on 4 speakers: some words come out right
        decode = out / "exp" / model / "decode_dev-clean-2"
        stats = json.loads((decode / "decode_stats.json").read_text())
        assert stats["utterances"] == n_dev and min(stats["wer"].values()) < 90
        hyps = [line.split()[1:] for line in next(decode.glob("hyp_ac*.txt")).read_text().splitlines()]
        assert len(hyps) == n_dev and sum(bool(h) for h in hyps) >= 0.75 * n_dev
    assert "dev-clean-2 WER" in result.stdout
