#!/usr/bin/env bash
# AN4 hybrid DNN-HMM recipe: manifests -> fbank -> lang -> flat start -> (train DNN <-> realign) x N
# -> HLG -> decode test -> WER report.  Every stage skips itself when its output is complete.
#
# Usage: ./run.sh [--stage N] [--stop-stage N] [--corpus-dir DIR] [--num-rounds N] [--epochs "2 2 3 4"]
#                 [--speed-perturb "0.9,1.1"]
#                 [--acoustic-scale X] [--acoustic-scales "0.2,0.25,0.3,0.4"] [--threads N]
# Outputs go to data/ and exp/ beside this script (override with --data-dir / --exp-dir).
set -euo pipefail
cd "$(dirname "$0")"
root=$(cd ../.. && pwd)

stage=0
stop_stage=100
corpus_dir=""              # default: ../shared/data/an4 if present, else download from CMU
data_dir=data
exp_dir=exp
speed_perturb="0.9,1.1"    # extra speed-perturbed copies of the training data ("" for none)
num_rounds=4               # DNN training rounds; each after the first uses the previous model's alignments
epochs="2 2 3 4"           # epochs per round (the last value repeats for extra rounds)
acoustic_scale=0.3         # stored with the graph; used by `hybrid-asr decode`
acoustic_scales="0.2,0.25,0.3,0.4"
threads=2

while [[ $# -gt 0 ]]; do
  case $1 in
    --stage) stage=$2; shift 2 ;;
    --stop-stage) stop_stage=$2; shift 2 ;;
    --corpus-dir) corpus_dir=$2; shift 2 ;;
    --data-dir) data_dir=$2; shift 2 ;;
    --exp-dir) exp_dir=$2; shift 2 ;;
    --speed-perturb) speed_perturb=$2; shift 2 ;;
    --num-rounds) num_rounds=$2; shift 2 ;;
    --epochs) epochs=$2; shift 2 ;;
    --acoustic-scale) acoustic_scale=$2; shift 2 ;;
    --acoustic-scales) acoustic_scales=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 1 ;;
  esac
done

export OMP_NUM_THREADS=$threads MKL_DEBUG_CPU_TYPE=5
if [[ -x $root/.venv/bin/hybrid-asr ]]; then
  hybrid_asr=("$root/.venv/bin/hybrid-asr" --num-threads "$threads")
else
  hybrid_asr=(hybrid-asr --num-threads "$threads")
fi

log() { echo "$(date '+%F %T') (run.sh stage ${cur_stage:-?}) $*"; }
run_stage() { cur_stage=$1; [[ $stage -le $1 && $stop_stage -ge $1 ]]; }
start_time=$(date +%s)

if run_stage 0; then
  if [[ -f $data_dir/manifests/an4.dic ]]; then log "manifests exist, skipping"
  else
    log "preparing AN4 manifests"
    "${hybrid_asr[@]}" prepare an4 "$data_dir/manifests" ${corpus_dir:+--corpus-dir "$corpus_dir"} \
      --download-dir "$data_dir/download"
  fi
fi

if run_stage 1; then
  for split in train test; do
    if [[ -f $data_dir/fbank/$split/index.json ]]; then log "fbank $split exists, skipping"; continue; fi
    sp=()
    [[ $split == train && -n $speed_perturb ]] && sp=(--speed-perturb "$speed_perturb")
    log "computing fbank features of $split ${sp[*]:-}"
    "${hybrid_asr[@]}" compute-features "$data_dir/manifests" $split "$data_dir/fbank/$split" --kind fbank "${sp[@]}"
  done
fi

if run_stage 2; then
  if [[ -f $data_dir/lang/lang.json ]]; then log "lang dir exists, skipping"
  else
    log "lexicon (etc/an4.dic), L, 3-gram LM on the TRAIN transcripts, G"
    "${hybrid_asr[@]}" prepare-lang "$data_dir/manifests" "$data_dir/lang" --lexicon "$data_dir/manifests/an4.dic" \
      --lm-order 3
  fi
fi

if run_stage 3; then
  if [[ -f $exp_dir/ali0/ali.npz ]]; then log "flat-start alignment exists, skipping"
  else
    log "flat-start alignment"
    "${hybrid_asr[@]}" align "$data_dir/fbank/train" "$data_dir/lang" "$exp_dir/ali0" --flat-start
  fi
fi

if run_stage 4; then
  read -r -a epoch_list <<< "$epochs"
  for ((r = 1; r <= num_rounds; r++)); do
    n=${epoch_list[$((r - 1))]:-${epoch_list[-1]}}
    if [[ -f $exp_dir/dnn$r/topology.json ]]; then log "round $r model exists, skipping"
    else
      log "round $r: training the DNN on $exp_dir/ali$((r - 1)) ($n epochs)"
      "${hybrid_asr[@]}" train "$data_dir/fbank/train" "$exp_dir/ali$((r - 1))" "$exp_dir/dnn$r" --epochs "$n"
    fi
    if [[ $r -lt $num_rounds ]]; then
      if [[ -f $exp_dir/ali$r/ali.npz ]]; then log "round $r alignment exists, skipping"
      else
        log "round $r: Viterbi realignment with $exp_dir/dnn$r"
        "${hybrid_asr[@]}" align "$data_dir/fbank/train" "$data_dir/lang" "$exp_dir/ali$r" --model "$exp_dir/dnn$r"
      fi
    fi
  done
fi

final=$exp_dir/dnn$num_rounds

if run_stage 5; then
  if [[ -f $final/HLG.pt ]]; then log "HLG exists, skipping"
  else
    log "building HLG for $final"
    "${hybrid_asr[@]}" make-graph "$final" "$data_dir/lang" --acoustic-scale "$acoustic_scale"
  fi
fi

if run_stage 6; then
  out=$final/decode_test
  if [[ -f $out/decode_stats.json ]]; then log "test decode exists, skipping"
  else
    log "decoding the test set (acoustic scales $acoustic_scales)"
    "${hybrid_asr[@]}" decode-dataset "$final" "$data_dir/fbank/test" "$out" --acoustic-scales "$acoustic_scales"
  fi
  log "WER report ($out/wer_ac${acoustic_scale}.txt; per-utterance alignments in *_details.txt):"
  head -2 "$out/wer_ac${acoustic_scale}.txt"
  "$root/.venv/bin/python" - "$out/decode_stats.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
print("all acoustic scales: " + ", ".join(f"{k}: {v:.2f}%" for k, v in s["wer"].items())
      + f"; decoding RTF {s['rtf']:.3f} ({s['audio_seconds']:.0f} s of audio)")
PY
fi
cur_stage=end
log "done in $(( $(date +%s) - start_time )) s"
