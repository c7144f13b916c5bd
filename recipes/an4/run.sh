#!/usr/bin/env bash
# AN4 (CMU census database): stage 0 prepares the lhotse manifests, copies etc/an4.dic and writes
# spk2gender; then recipes/common/hybrid.sh with 10% of the training speakers held out as dev (women
# and men in proportion; the acoustic scale is chosen on dev and the test set decoded once with it).
#
# Default (--gmm true): Kaldi's GMM ladder, then a TDNN on speaker-adapted features, as Kaldi's
# egs/an4/s5 followed by an nnet recipe on fMLLR features: MFCC (+deltas) with per-speaker CMVN,
# flat start, monophone GMM (stages 3-6, decoded: exp/mono), tri1 (deltas), tri2 (LDA+MLLT), tri3
# (SAT) with trees of at most 1800 leaves (stage 7), fMLLR features of every split from tri3 (data/fmllr:
# training speakers with the transforms of tri3's alignment, estimated from their transcripts; dev/test
# speakers from tri3's speaker-independent first pass) and a TDNN (8 epochs, no speed perturbation) on
# them and tri3's fMLLR alignment (stage 8: exp/tdnn_fmllr, the final model), trained on the audio and one
# copy of every utterance 20-40 dB quieter, rounded to 16 bits with dither as a quiet recording is
# (data/mfcc/train_nodev_aug; each copy labelled as its original: exp/tri3_ali_aug; docs/robustness.md:
# quiet input then decodes as well as loud), HCLG and decode of tri3
# (two-pass fMLLR) and the TDNN (stages 9-10). Lattice-free MMI fine-tuning of the TDNN gains nothing
# after 8 epochs (docs/recipes/an4.md) and is left out: --sequence lfmmi (or mmi) adds it as stages 11-12
# (exp/tdnn_fmllr_lfmmi; docs/sequence.md). The monophone GMM's dev sweep starts at 0.04 (0.03 was never
# chosen); tri3's at 0.03.
#
# --gmm false: the earlier recipe: fbank, a flat start refined by 4 monophone DNN rounds with Viterbi
# realignment, a decision tree of 400 leaves, a senone DNN, triphone realignment and a TDNN
# (exp/cd400/tdnn2), trained on speed-perturbed copies augmented with noise, band-limiting and level
# changes (AugmentConfig's defaults; docs/robustness.md).
#
# Outputs: data/ and exp/ beside this script. The settings are the AN4 overrides of hybrid.sh's and the
# configs' defaults, sized so that `make an4` stays under 30 minutes on 2 CPU cores (docs/recipes/an4.md).
#
# Usage: ./run.sh [--stage N] [--stop-stage N] [--corpus-dir DIR] [--gmm true|false] [any option of ../common/hybrid.sh]
#   --corpus-dir DIR   AN4 root (etc/, wav/); default ../shared/data/an4 if present, else download
#   --cd-leaves N      tree leaves (default 1800 with --gmm true, as Kaldi's AN4 recipe; 400 with --gmm false)
#   --cd-arch TYPE --cd-arch-opts "..."   another final model, e.g. --cd-arch dnn --cd-arch-opts ""
set -euo pipefail
cd "$(dirname "$0")"
self=$(pwd)/$(basename "$0")
root=$(cd ../.. && pwd)

stage=0
corpus_dir=""
gmm=true
rest=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --corpus-dir) corpus_dir=$2; shift 2 ;;
    --stage) stage=$2; rest+=("$1" "$2"); shift 2 ;;
    --gmm) gmm=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set /{/^#/p}' "$self"; exit 0 ;;
    *) rest+=("$1"); shift ;;
  esac
done

start=$(date +%s)
hybrid_asr=("$root/.venv/bin/hybrid-asr"); [[ -x ${hybrid_asr[0]} ]] || hybrid_asr=(hybrid-asr)
if [[ $stage -le 0 ]]; then
  if [[ -f data/manifests/an4.dic ]]; then echo "$(date '+%F %T') (stage 0) manifests exist, skipping"
  else
    echo "$(date '+%F %T') (stage 0) preparing AN4 manifests"
    "${hybrid_asr[@]}" prepare an4 data/manifests ${corpus_dir:+--corpus-dir "$corpus_dir"} --download-dir data/download
  fi
fi
common=(--manifests data/manifests --lexicon data/manifests/an4.dic --dev-fraction 0.1 --dev-groups data/manifests/spk2gender
  --cd-arch tdnn --cd-arch-opts "--hidden-dim 256 --chunk-frames 32")
if [[ $gmm == true ]]; then
  ../common/hybrid.sh "${common[@]}" --gmm true --speed-perturb "" --cd-leaves 1800 --cd-epochs 8 --augment true \
    --augment-opts "--noise-prob 0 --bandlimit-prob 0 --gain-prob 1 --gain-min-db -40 --gain-max-db -20 --gain-requantize" \
    --mono-acoustic-scales 0.04,0.05,0.06,0.07,0.08,0.1 --acoustic-scales 0.08,0.1,0.12,0.15,0.2 "${rest[@]}"
else
  ../common/hybrid.sh "${common[@]}" --augment true --num-rounds 4 --epochs "1 1 2 3" --cd-leaves 400 \
    --cd-epochs "1 4" --acoustic-scales 0.15,0.2,0.25 "${rest[@]}"
fi
echo "$(date '+%F %T') done in $(( $(date +%s) - start )) s"
