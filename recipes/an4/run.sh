#!/usr/bin/env bash
# AN4 (CMU census database): stage 0 prepares the lhotse manifests, copies etc/an4.dic and writes
# spk2gender; stages 1-6 are recipes/common/hybrid.sh's monophone system (10% of the training
# speakers held out as dev, women and men in proportion; features, lang, flat start, 4 DNN training
# rounds with Viterbi realignment, HLG, decode: acoustic scale chosen on dev, test decoded once;
# the speed-perturbed training copies are augmented with noise, band-limiting and level changes,
# AugmentConfig's defaults, so that the models hold up on noisy and 8 kHz audio: --augment false
# trains on clean copies only, docs/robustness.md)
# and stages 7-10 its context-dependent system (decision tree of 400 leaves, senone DNN, triphone
# realignment, then a TDNN (exp/cd400/tdnn2), HCLG, decode); with --sequence lfmmi (or mmi), stages
# 11-12 fine-tune that TDNN with LF-MMI into exp/cd400/tdnn2_lfmmi and decode it (about 10 more
# minutes, so not part of `make an4`; docs/sequence.md). Outputs: data/ and exp/ beside this
# script. The settings are the AN4 overrides of hybrid.sh's and the configs' defaults, sized so
# that `make an4` stays under 30 minutes on 2 CPU cores (docs/recipes/an4.md).
#
# Usage: ./run.sh [--stage N] [--stop-stage N] [--corpus-dir DIR] [any option of ../common/hybrid.sh]
#   --corpus-dir DIR   AN4 root (etc/, wav/); default ../shared/data/an4 if present, else download
#   --cd-leaves N      decision-tree leaves of the senone system (default 400; 0: monophone only)
#   --cd-arch TYPE --cd-arch-opts "..."   another final model, e.g. --cd-arch dnn --cd-arch-opts ""
set -euo pipefail
cd "$(dirname "$0")"
self=$(pwd)/$(basename "$0")
root=$(cd ../.. && pwd)

stage=0
corpus_dir=""
rest=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --corpus-dir) corpus_dir=$2; shift 2 ;;
    --stage) stage=$2; rest+=("$1" "$2"); shift 2 ;;
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
../common/hybrid.sh --manifests data/manifests --lexicon data/manifests/an4.dic --dev-fraction 0.1 \
  --dev-groups data/manifests/spk2gender --augment true --num-rounds 4 --epochs "1 1 2 3" --cd-leaves 400 \
  --cd-epochs "1 4" \
  --cd-arch tdnn --cd-arch-opts "--hidden-dim 256 --chunk-frames 32" --acoustic-scales 0.15,0.2,0.25 "${rest[@]}"
echo "$(date '+%F %T') done in $(( $(date +%s) - start )) s"
