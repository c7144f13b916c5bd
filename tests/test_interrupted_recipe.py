"""Interrupted work: the shared recipe (recipes/common/hybrid.sh) killed with SIGKILL at a random
moment inside each of its stages, re-run after every kill, ends with the outputs of a run that
was never interrupted (features, lang, alignments, tree, models, graphs and transcripts)."""

import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch
from conftest import FSDD, corpus_mark

pytestmark = corpus_mark(FSDD)
ROOT = Path(__file__).resolve().parents[1]
DIGITS = ["ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE"]
STAGES = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10)


def _corpus(root: Path) -> None:
    rows = {"train": [], "test": []}
    for wav in sorted((FSDD / "recordings").glob("*_george_*.wav")):
        digit, speaker, index = wav.stem.split("_")
        if int(index) < 8:
            rows["test" if int(index) < 2 else "train"].append((f"{speaker}-{wav.stem}", wav, DIGITS[int(digit)]))
    for split, items in rows.items():
        d = root / split
        d.mkdir(parents=True)
        (d / "wav.scp").write_text("".join(f"{u} {w}\n" for u, w, _ in items))
        (d / "text").write_text("".join(f"{u} {t}\n" for u, _, t in items))
        (d / "utt2spk").write_text("".join(f"{u} george\n" for u, _, _ in items))


def _recipe(d: Path):
    return ["bash", str(ROOT / "recipes/common/hybrid.sh"), "--manifests", "manifests", "--cmudict",
            "--sample-rate", "8000", "--num-mel-bins", "23", "--speed-perturb", "", "--num-rounds", "2",
            "--epochs", "2 2", "--lm-order", "1", "--acoustic-scale", "0.5", "--acoustic-scales", "0.5",
            "--train-opts", "--hidden-dim 64 --num-layers 1 --checkpoint-every 5", "--threads", "1",
            "--cd-leaves", "20", "--cd-epochs", "2 2"]


def _prepare(d: Path) -> None:
    exe = Path(sys.executable).parent / "hybrid-asr"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "hybrid_asr.cli.main"]
    _corpus(d / "kaldi")
    for split in ("train", "test"):
        subprocess.run([*cmd, "import-kaldi-dir", str(d / "kaldi" / split), "manifests", "--split", split], cwd=d,
                       check=True, capture_output=True)


def _run(d: Path, kill_stage: int = 0, delay: float = 0.0):
    """Run the recipe in ``d``. With ``kill_stage``, SIGKILL its whole process group ``delay``
    seconds after that stage starts real work (its first log line that is not a skip).

    Returns:
        ``(exit status or None if killed, {stage: seconds from the start when it began})``.
    """
    start = time.time()
    proc = subprocess.Popen(_recipe(d), cwd=d, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    began, target = {}, threading.Event()

    def watch():
        for line in proc.stdout:
            m = re.search(r"\(stage (\d+)\)", line)
            if m and "skipping" not in line and int(m.group(1)) not in began:
                began[int(m.group(1))] = time.time() - start
                if int(m.group(1)) == kill_stage:
                    target.set()

    reader = threading.Thread(target=watch, daemon=True)
    reader.start()
    while kill_stage and proc.poll() is None and not target.wait(0.05):
        pass
    if kill_stage and proc.poll() is None:
        time.sleep(delay)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            reader.join(10)
            return None, began
    proc.wait()
    reader.join(10)
    return proc.returncode, began


def _outputs(d: Path):
    """What later stages and users read, as comparable values (not bytes: torch.save differs)."""
    out = {}
    for f in sorted((d / "data").rglob("*")) + sorted((d / "exp").rglob("*")):
        rel = str(f.relative_to(d))
        if not f.is_file() or "checkpoints" in rel or f.name.endswith((".png", ".tmp")) or f.name in (
                "timing.json", "graph_info.json", "metrics.jsonl", "training.json", "tree_info.json",
                "decode_stats.json", "failed.txt") or ".tmp" in f.name:
            continue
        if f.suffix == ".npz":
            with np.load(f) as z:
                out[rel] = {k: z[k].tolist() for k in z.files}
        elif f.suffix == ".npy":
            out[rel] = np.load(f).tobytes()
        elif f.suffix == ".pt":
            value = torch.load(f, weights_only=True)
            out[rel] = _plain(value)
        elif f.name in ("bundle.json", "LG.json"):
            continue  # hashes of torch.save bytes
        else:
            out[rel] = f.read_bytes()
    return out


def _plain(value):
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def test_recipe_killed_in_every_stage_resumes_to_the_same_outputs(tmp_path):
    """One SIGKILL at a random moment of every stage (seed: ``$HYBRID_ASR_KILL_SEED``, default 0),
    a re-run after each, then a last run: the outputs equal an uninterrupted run's."""
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    for d in (reference, killed):
        d.mkdir()
        _prepare(d)
    code, began = _run(reference)
    assert code == 0 and sorted(began) == list(STAGES), began
    ends = [began[s] for s in STAGES[1:]] + [max(began.values()) + 5.0]
    rng = random.Random(int(os.environ.get("HYBRID_ASR_KILL_SEED", "0")))
    kills = 0
    for stage, end in zip(STAGES, ends):
        code, _ = _run(killed, stage, rng.uniform(0.0, end - began[stage]))
        kills += code is None
        assert code in (None, 0)
    code, _ = _run(killed)
    assert code == 0
    assert kills >= len(STAGES) // 2, kills  # most kills landed inside a stage
    ref, got = _outputs(reference), _outputs(killed)
    assert sorted(ref) == sorted(got)
    different = [k for k in ref if ref[k] != got[k]]
    assert not different, different
