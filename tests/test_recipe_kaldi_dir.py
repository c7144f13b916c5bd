"""The shared recipe stages (recipes/common/hybrid.sh) on a corpus given as Kaldi data dirs:
import-kaldi-dir, then features -> lang (CMUdict) -> flat start -> 2 rounds -> HLG -> WER, then
the context-dependent stages (tree -> senone alignments -> train -> triphone realignment -> train
-> HCLG -> WER); a second run must skip every stage."""

import json
import subprocess
import sys
from pathlib import Path

from conftest import FSDD, corpus_mark

pytestmark = corpus_mark(FSDD)
ROOT = Path(__file__).resolve().parents[1]
DIGITS = ["ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE"]


def _kaldi_dirs(root: Path) -> None:
    rows = {"train": [], "dev": [], "test": []}
    for wav in sorted((FSDD / "recordings").glob("*.wav")):
        digit, speaker, index = wav.stem.split("_")
        if speaker not in ("george", "jackson") or int(index) >= 18:
            continue
        split = "test" if int(index) < 5 else "dev" if int(index) >= 15 else "train"
        rows[split].append((f"{speaker}-{wav.stem}", wav, DIGITS[int(digit)], speaker))
    for split, items in rows.items():
        d = root / split
        d.mkdir(parents=True)
        (d / "wav.scp").write_text("".join(f"{u} {w}\n" for u, w, _, _ in items))
        (d / "text").write_text("".join(f"{u} {t}\n" for u, _, t, _ in items))
        (d / "utt2spk").write_text("".join(f"{u} {s}\n" for u, _, _, s in items))


def _hybrid_asr():
    exe = Path(sys.executable).parent / "hybrid-asr"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "hybrid_asr.cli.main"]


def test_recipe_stages_on_kaldi_data_dirs(tmp_path):
    _kaldi_dirs(tmp_path / "kaldi")
    for split in ("train", "dev", "test"):
        subprocess.run([*_hybrid_asr(), "import-kaldi-dir", str(tmp_path / "kaldi" / split), "manifests",
                        "--split", split], cwd=tmp_path, check=True, capture_output=True)
    cmd = ["bash", str(ROOT / "recipes/common/hybrid.sh"), "--manifests", "manifests", "--cmudict",
           "--sample-rate", "8000", "--num-mel-bins", "23", "--speed-perturb", "", "--num-rounds", "2",
           "--epochs", "3 4", "--lm-order", "1", "--acoustic-scale", "0.5", "--acoustic-scales", "0.5,1",
           "--word-insertion-penalties", "0,0.5", "--dev-split", "dev",
           "--train-opts", "--hidden-dim 256 --num-layers 2", "--threads", "1", "--cd-leaves", "40",
           "--cd-epochs", "3 3", "--decode-opts", "--max-active-states 6000 --output-beam 7"]
    first = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    # the acoustic scale and word insertion penalty are swept on dev, stored with the model, and the test
    # set decoded once with them
    dev = json.loads((tmp_path / "exp/dnn2/decode_dev/decode_stats.json").read_text())
    assert dev["utterances"] == 2 * 10 * 3 and set(dev["wer"]) == {"0.5", "1", "0.5_wip0.5", "1_wip0.5"}
    assert dev["search"]["max_active_states"] == 6000 and dev["search"]["output_beam"] == 7  # --decode-opts
    stats = json.loads((tmp_path / "exp/dnn2/decode_test/decode_stats.json").read_text())
    assert stats["search"]["max_active_states"] == 6000
    best, scale, penalty = dev["best_setting"], dev["best_acoustic_scale"], dev["best_word_insertion_penalty"]
    assert stats["utterances"] == 2 * 10 * 5 and list(stats["wer"]) == [best]
    stored = json.loads((tmp_path / "exp/dnn2/search_config.json").read_text())
    assert (stored["acoustic_scale"], stored["word_insertion_penalty"]) == (scale, penalty)
    assert stats["wer"][best] <= 10.0
    setting = f"acoustic scale {scale:g}" + (f", word insertion penalty {penalty:g}" if penalty else "")
    assert "%WER" in first.stdout and f"test WER {stats['wer'][best]:.2f}% at {setting}" in first.stdout
    cd_dev = json.loads((tmp_path / "exp/cd40/dnn2/decode_dev/decode_stats.json").read_text())
    cd_stats = json.loads((tmp_path / "exp/cd40/dnn2/decode_test/decode_stats.json").read_text())
    assert list(cd_stats["wer"]) == [cd_dev["best_setting"]]
    assert min(cd_stats["wer"].values()) <= 10.0
    tree_info = json.loads((tmp_path / "exp/cd40/tree/tree_info.json").read_text())
    assert 30 <= tree_info["senones"] <= 40
    assert (tmp_path / "exp/cd40/ali1/tree.json").is_file()  # realigned with the triphone model
    _check_triphone_alignments(tmp_path)
    second = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
    assert second.returncode == 0
    skipped = [line for line in second.stdout.splitlines() if "skipping" in line]
    # monophone: features x3, lang, flat start, 2 models, 1 ali, HLG, decode dev + test;
    # triphone: final mono ali, tree, senone ali, 2 models, 1 realignment, HCLG, decode dev + test
    assert len(skipped) == (3 + 1 + 1 + 2 + 1 + 1 + 2) + (1 + 1 + 1 + 2 + 1 + 1 + 2)
    assert "%WER" in second.stdout  # the report is printed again


def _pronunciations(lang: Path):
    prons = {}
    for line in (lang / "lexicon.txt").read_text().splitlines():
        word, *phones = line.split()
        prons.setdefault(word, set()).add(tuple(phones))
    return prons


def _ctm(text: str):
    rows = {}
    for line in text.splitlines():
        utt, _, start, dur, label, *_ = line.split()
        rows.setdefault(utt, []).append((label, round(float(start) * 100), round(float(dur) * 100)))
    return rows


def _check_triphone_alignments(d: Path) -> None:
    """Phone and senone boundaries of the triphone realignment (ali-to-ctm) and of one file aligned
    on its own with the triphone model (align-audio): the phones are the word's pronunciation
    between optional silences, and the segments tile the frames."""
    prons = _pronunciations(d / "data/lang")
    texts = dict(line.split(" ", 1) for line in (d / "kaldi/train/text").read_text().splitlines())
    for level in ("phone", "senone"):
        subprocess.run([*_hybrid_asr(), "ali-to-ctm", "exp/cd40/ali1", f"{level}.ctm", "--level", level],
                       cwd=d, check=True, capture_output=True)
    phones, senones = _ctm((d / "phone.ctm").read_text()), _ctm((d / "senone.ctm").read_text())
    assert len(phones) >= 0.95 * len(texts)
    for utt, segs in phones.items():
        assert tuple(p for p, _, _ in segs if p != "SIL") in prons[texts[utt].strip()], (utt, segs)
        assert all(s + n == nxt for (_, s, n), (_, nxt, _) in zip(segs, segs[1:]))  # contiguous
        assert segs[0][1] == 0 and segs[-1][1] + segs[-1][2] == senones[utt][-1][1] + senones[utt][-1][2]
        assert {s for _, s, _ in segs} <= {s for _, s, _ in senones[utt]}  # phone starts are senone starts
    utt = sorted(phones)[0]
    wav = next(line.split()[1] for line in (d / "kaldi/train/wav.scp").read_text().splitlines()
               if line.startswith(utt + " "))
    out = subprocess.run([*_hybrid_asr(), "align-audio", "exp/cd40/dnn2", "data/lang", wav, texts[utt].strip(),
                          "--level", "both"], cwd=d, check=True, capture_output=True, text=True).stdout
    rows = [line.split() for line in out.splitlines()]
    file_phones = [r[4] for r in rows if r[5] == "phone" and r[4] != "SIL"]
    assert tuple(file_phones) in prons[texts[utt].strip()]
    num_senones = json.loads((d / "exp/cd40/dnn2/model_config.json").read_text())["num_pdfs"]
    assert all(0 <= int(r[4]) < num_senones for r in rows if r[5] == "senone")
    bad = subprocess.run([*_hybrid_asr(), "align-audio", "exp/cd40/dnn2", "data/lang", "missing.wav", "ONE"],
                         cwd=d, capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stderr.strip().count("\n") == 0 and "missing.wav" in bad.stderr
    too_long = subprocess.run([*_hybrid_asr(), "align-audio", "exp/cd40/dnn2", "data/lang", wav, "SEVEN " * 80],
                              cwd=d, capture_output=True, text=True)
    assert too_long.returncode == 1 and "cannot be aligned" in too_long.stderr
    assert too_long.stderr.strip().count("\n") == 0 and too_long.stdout == ""


def test_gmm_recipe_stages_on_kaldi_data_dirs(tmp_path):
    """--gmm true: MFCC stores, the monophone GMM, tri1 (deltas), tri2 (LDA+MLLT), tri3 (SAT), fMLLR
    features for every split, a DNN on them (speed-perturbed copies, augmented) and tri3's alignment,
    both decoded against each other; the monophone GMM's own sweep; a second run skips every stage;
    without speed perturbation the augmented copies take their originals' alignment."""
    _kaldi_dirs(tmp_path / "kaldi")
    for split in ("train", "dev", "test"):
        subprocess.run([*_hybrid_asr(), "import-kaldi-dir", str(tmp_path / "kaldi" / split), "manifests",
                        "--split", split], cwd=tmp_path, check=True, capture_output=True)
    cmd = ["bash", str(ROOT / "recipes/common/hybrid.sh"), "--manifests", "manifests", "--cmudict", "--gmm", "true",
           "--sample-rate", "8000", "--num-mel-bins", "23", "--lm-order", "1", "--dev-split", "dev",
           "--gmm-opts", "--num-iters 13 --max-iter-inc 8 --total-gauss 300 --realign-iters 4,8",
           "--gmm-acoustic-scales", "0.1,0.2", "--mono-acoustic-scales", "0.2", "--acoustic-scales", "0.5,1",
           "--augment", "true", "--augment-opts",
           "--gain-prob 1 --gain-min-db -30 --gain-max-db -20 --gain-requantize --noise-prob 0 --bandlimit-prob 0",
           "--threads", "2", "--cd-leaves", "40",
           "--cd-epochs", "6", "--cd-arch", "dnn", "--cd-arch-opts", "--hidden-dim 256 --num-layers 2"]
    first = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    # the neural model's training split: the speed-perturbed copies (0.9, 1.1) as speakers of their own
    for split in ("train_sp", "dev", "test"):
        config = json.loads((tmp_path / f"data/fmllr/{split}/index.json").read_text())["config"]
        assert config["kind"] == "fmllr" and config["adapted_dim"] == 40
        info = json.loads((tmp_path / f"data/fmllr/{split}/adapt_info.json").read_text())
        # training speakers: the transforms tri3's alignment of the same store estimated (reused)
        assert info["transcripts"] == ("alignment exp/tri3_ali_sp" if split == "train_sp" else "first-pass")
        assert info["speakers"] == (6 if split == "train_sp" else 2)
    from hybrid_asr.hmm.alignment import Alignments

    assert len(Alignments.load(tmp_path / "exp/tri3_ali_sp/ali.npz")) == 3 * len(
        Alignments.load(tmp_path / "exp/tri3_ali/ali.npz"))
    assert json.loads((tmp_path / "exp/tri3/model_config.json").read_text())["type"] == "gmm"
    assert (tmp_path / "exp/tri3/si_model/bundle.json").is_file() and (tmp_path / "exp/tri3_ali/states.npz").is_file()
    wer = {}
    for model in ("mono", "tri3", "dnn_fmllr"):
        dev = json.loads((tmp_path / f"exp/{model}/decode_dev/decode_stats.json").read_text())
        test = json.loads((tmp_path / f"exp/{model}/decode_test/decode_stats.json").read_text())
        assert list(test["wer"]) == [f"{dev['best_acoustic_scale']:g}"]  # test decoded once, at dev's scale
        wer[model] = next(iter(test["wer"].values()))
    assert set(json.loads((tmp_path / "exp/tri3/decode_dev/decode_stats.json").read_text())["wer"]) == {"0.1", "0.2"}
    assert set(json.loads((tmp_path / "exp/mono/decode_dev/decode_stats.json").read_text())["wer"]) == {"0.2"}
    # --augment: the neural model's copies are augmented as asked, the GMMs' training audio is not
    augment = json.loads((tmp_path / "data/mfcc/train_sp/augment_config.json").read_text())
    assert augment["gain_prob"] == 1 and augment["gain_requantize"] and augment["noise_prob"] == 0
    assert not any((tmp_path / f"data/{d}/train/augment_config.json").exists() for d in ("mfcc", "mfcc_deltas"))
    assert "fmllr" in json.loads((tmp_path / "exp/tri3/decode_test/timing.json").read_text())  # two passes
    assert max(wer.values()) <= 10.0, wer
    change = [line for line in first.stdout.splitlines() if "(exp/tri3) ->" in line]
    assert len(change) == 1 and ("relative reduction" in change[0]) == (wer["tri3"] > 0), change
    second = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
    assert second.returncode == 0
    skipped = [line for line in second.stdout.splitlines() if "skipping" in line]
    # MFCC x2 x3 and the speed-perturbed training MFCC, lang, flat start, mono, HLG, decode dev + test;
    # mono ali, tree, tri1 ali0, tri1, tri1 ali, tri2, tri2 ali, tri3, tri3 ali, tri3 ali of the
    # speed-perturbed copies; HCLG, fMLLR x3, DNN; HCLG; decodes (tri3, DNN) x2
    assert len(skipped) == (7 + 1 + 1 + 1 + 1 + 2) + 10 + (1 + 3 + 1) + 1 + 4, skipped
    # without speed perturbation (the AN4 recipe's way): one quieter copy of each training utterance
    # (<train>_aug), labelled as its original by copy-ali (no second tri3 alignment), its speakers'
    # transforms estimated on those labels
    aug = subprocess.run([*cmd, "--speed-perturb", "", "--stop-stage", "7"], cwd=tmp_path, capture_output=True,
                         text=True)
    assert aug.returncode == 0, aug.stdout[-3000:] + aug.stderr[-3000:]
    assert "their originals' in exp/tri3_ali" in aug.stdout and "tri3 (fMLLR), the training copies" not in aug.stdout
    copied, original = (Alignments.load(tmp_path / f"exp/{d}/ali.npz") for d in ("tri3_ali_aug", "tri3_ali"))
    assert set(copied) == set(original) | {f"{u}_aug" for u in original}
    assert all((copied[f"{u}_aug"] == original[u]).all() for u in original)
    from hybrid_asr.stages.gmm import load_transforms

    speakers = set(load_transforms(tmp_path / "exp/tri3_ali/fmllr.npz"))
    assert set(load_transforms(tmp_path / "exp/tri3_ali_aug/fmllr.npz")) == speakers | {f"{s}_aug" for s in speakers}
    assert json.loads((tmp_path / "data/mfcc/train_aug/augment_config.json").read_text())["gain_requantize"]
