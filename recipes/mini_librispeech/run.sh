#!/usr/bin/env bash
# mini LibriSpeech (openslr.org 31: train-clean-5, 5 hours, 29 speakers; dev-clean-2, 1 hour), the
# corpus of Kaldi's egs/mini_librispeech/s5. Stage 0 prepares the manifests with lhotse's LibriSpeech
# preparer (one split per part) and fetches the LM resources of openslr.org 11 that Kaldi's recipe
# uses (librispeech-lexicon.txt and the small 3-gram 3-gram.pruned.3e-7.arpa.gz, "tgsmall") unless
# --lm-dir holds them. Then recipes/common/hybrid.sh: Kaldi's GMM ladder (monophone, tri1, tri2
# LDA+MLLT, tri3 SAT with trees of at most 2500 leaves) on MFCC, a TDNN on tri3's fMLLR features
# and alignment, lattice-free MMI; the lang dir's G is the given 3-gram (prepare-lang --arpa).
# 10% of the training speakers are held out as dev to choose the acoustic scale; dev-clean-2 is
# decoded once with it (Kaldi's RESULTS tune on dev-clean-2 itself: tri3b 18.10, chain TDNN-F 10.64 WER
# with tgsmall). Expected time and disk per stage: docs/recipes/mini_librispeech.md.
#
# Usage: ./run.sh [--stage N] [--corpus-dir DIR] [--lm-dir DIR] [any option of ../common/hybrid.sh]
#   --corpus-dir DIR   the folder holding train-clean-5/ and dev-clean-2/ (default: download into
#                      data/download with lhotse)
#   --lm-dir DIR       holds librispeech-lexicon.txt and 3-gram.pruned.3e-7.arpa.gz (default data/lm,
#                      downloaded from openslr.org 11 if missing)
set -euo pipefail
cd "$(dirname "$0")"
self=$(pwd)/$(basename "$0")
root=$(cd ../.. && pwd)

stage=0
corpus_dir=""
lm_dir=data/lm
rest=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --corpus-dir) corpus_dir=$2; shift 2 ;;
    --lm-dir) lm_dir=$2; shift 2 ;;
    --stage) stage=$2; rest+=("$1" "$2"); shift 2 ;;
    -h|--help) sed -n '2,/^set /{/^#/p}' "$self"; exit 0 ;;
    *) rest+=("$1"); shift ;;
  esac
done
lexicon=$lm_dir/librispeech-lexicon.txt
arpa=$lm_dir/3-gram.pruned.3e-7.arpa.gz

start=$(date +%s)
hybrid_asr=("$root/.venv/bin/hybrid-asr"); [[ -x ${hybrid_asr[0]} ]] || hybrid_asr=(hybrid-asr)
if [[ $stage -le 0 ]]; then
  if [[ -f data/manifests/supervisions_dev-clean-2.jsonl.gz ]]; then
    echo "$(date '+%F %T') (stage 0) manifests exist, skipping"
  else
    echo "$(date '+%F %T') (stage 0) mini LibriSpeech manifests (train-clean-5, dev-clean-2)"
    "${hybrid_asr[@]}" prepare librispeech data/manifests --parts train-clean-5,dev-clean-2 \
      ${corpus_dir:+--corpus-dir "$corpus_dir"} --download-dir data/download
  fi
  "${hybrid_asr[@]}" download-librispeech-lm "$lm_dir" librispeech-lexicon.txt 3-gram.pruned.3e-7.arpa.gz
fi
../common/hybrid.sh --manifests data/manifests --lexicon "$lexicon" --arpa "$arpa" \
  --train-split train-clean-5 --test-split dev-clean-2 --dev-fraction 0.1 \
  --gmm true --speed-perturb "" --cd-leaves 2500 --cd-epochs 4 --sequence lfmmi \
  --cd-arch tdnn --cd-arch-opts "--hidden-dim 512 --chunk-frames 32" \
  --acoustic-scales 0.06,0.08,0.1,0.12,0.15 --decode-opts "--backend k2 --sweep lattice" "${rest[@]}"
echo "$(date '+%F %T') done in $(( $(date +%s) - start )) s"
