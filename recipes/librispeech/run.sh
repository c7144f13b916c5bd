#!/usr/bin/env bash
# LibriSpeech (openslr.org 12), train-clean-100 first: the same stages as ../mini_librispeech/run.sh
# (Kaldi's GMM ladder, a TDNN on tri3's fMLLR features, lattice-free MMI; G from the given small
# 3-gram 3-gram.pruned.3e-7.arpa.gz with librispeech-lexicon.txt), on --parts (default
# train-clean-100,dev-clean,test-clean): the first part is trained on (10% of its speakers held out
# as dev to choose the acoustic scale), the others are decoded once with it, each with its own WER
# report. Larger trees (--cd-leaves 4200, Kaldi's tri4b on train-clean-100) and a wider TDNN.
# It is not run here (no network, 2 cores): docs/recipes/librispeech.md gives the expected time and
# disk per stage and the commands for a cluster (docs/scaling.md).
#
# Usage: ./run.sh [--stage N] [--corpus-dir DIR] [--lm-dir DIR] [--parts P1,P2,...] [any option of ../common/hybrid.sh]
#   --corpus-dir DIR   the folder holding the part folders (default: download into data/download with lhotse)
#   --lm-dir DIR       holds librispeech-lexicon.txt and 3-gram.pruned.3e-7.arpa.gz (default data/lm,
#                      downloaded from openslr.org 11 if missing)
set -euo pipefail
cd "$(dirname "$0")"
self=$(pwd)/$(basename "$0")
root=$(cd ../.. && pwd)

stage=0
corpus_dir=""
lm_dir=data/lm
parts=train-clean-100,dev-clean,test-clean
rest=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --corpus-dir) corpus_dir=$2; shift 2 ;;
    --lm-dir) lm_dir=$2; shift 2 ;;
    --parts) parts=$2; shift 2 ;;
    --stage) stage=$2; rest+=("$1" "$2"); shift 2 ;;
    -h|--help) sed -n '2,/^set /{/^#/p}' "$self"; exit 0 ;;
    *) rest+=("$1"); shift ;;
  esac
done
IFS=, read -r -a part_list <<< "$parts"
train=${part_list[0]}

start=$(date +%s)
hybrid_asr=("$root/.venv/bin/hybrid-asr"); [[ -x ${hybrid_asr[0]} ]] || hybrid_asr=(hybrid-asr)
if [[ $stage -le 0 ]]; then
  if [[ -f data/manifests/supervisions_${part_list[-1]}.jsonl.gz ]]; then
    echo "$(date '+%F %T') (stage 0) manifests exist, skipping"
  else
    echo "$(date '+%F %T') (stage 0) LibriSpeech manifests ($parts)"
    "${hybrid_asr[@]}" prepare librispeech data/manifests --parts "$parts" \
      ${corpus_dir:+--corpus-dir "$corpus_dir"} --download-dir data/download
  fi
  "${hybrid_asr[@]}" download-librispeech-lm "$lm_dir" librispeech-lexicon.txt 3-gram.pruned.3e-7.arpa.gz
fi
for test in "${part_list[@]:1}"; do
  # stages skip what is complete: for a later test part only its features, fMLLR features and decodes run
  ../common/hybrid.sh --manifests data/manifests --lexicon "$lm_dir/librispeech-lexicon.txt" \
    --arpa "$lm_dir/3-gram.pruned.3e-7.arpa.gz" --train-split "$train" --test-split "$test" --dev-fraction 0.1 \
    --gmm true --speed-perturb "" --cd-leaves 4200 --cd-epochs 4 --sequence lfmmi \
    --cd-arch tdnn --cd-arch-opts "--hidden-dim 768 --chunk-frames 32" \
    --acoustic-scales 0.06,0.08,0.1,0.12,0.15 --decode-opts "--backend k2 --sweep lattice" "${rest[@]}"
done
echo "$(date '+%F %T') done in $(( $(date +%s) - start )) s"
