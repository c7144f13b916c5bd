#!/usr/bin/env bash
# Shared stages of a hybrid DNN-HMM recipe, for any corpus already in lhotse manifests
# (hybrid-asr prepare / import-kaldi-dir): features -> lang -> flat start -> (train <-> realign) x N
# -> HLG -> decode -> WER report. Every stage skips itself when its output is complete.
#
# Usage: recipes/common/hybrid.sh --manifests DIR (--lexicon FILE | --cmudict | --graphemes | --subwords N) [options]
#   --graphemes / --subwords N   no pronunciation dictionary: words spelled in letters or in N
#                                sentencepiece units (prepare-lang); then --classes "" for the tree
#   --classes FILE               phone classes for the decision-tree questions (default
#                                lexicon/arpabet_classes.txt; "" for data-driven questions only)
#   --stage N / --stop-stage N   run stages N..M (1 features, 2 lang, 3 flat start, 4 training rounds,
#                                5 HLG, 6 decode + WER)
#   --data-dir DIR --exp-dir DIR outputs (default data, exp in the current directory)
#   --train-split S --test-split S   manifest split names (train, test)
#   --dev-fraction X             hold out this share of the training speakers as the dev split (stage 1;
#                                0, the default: no dev set). The acoustic scale is then chosen on dev
#                                (the --acoustic-scales sweep) and the test set decoded once with it.
#   --dev-groups FILE            '<speaker> <group>' lines: hold out the fraction within each group, and
#                                report the WER per group
#   --dev-split S                use the existing manifest split S as the dev set instead
#   --sample-rate HZ --num-mel-bins N --cmvn MODE --speed-perturb "0.9,1.1"
#   --augment true|false         augment the speed-perturbed training copies, or without speed perturbation
#                                add one augmented copy of every training utterance (default false; seeded:
#                                silence/low-level noise padding, noise at 5-25 dB SNR, 8 kHz band,
#                                gain; AugmentConfig) --augment-opts "..." (e.g. "--pad-prob 0.5"; with
#                                --gmm true only the neural model's training data is augmented)
#   --num-rounds N --epochs "2 2 3 3 4" (last value repeats)
#   --train-opts "..."           extra options of every 'hybrid-asr train' (e.g. "--hidden-dim 256"); the
#                                model and training defaults live in their config dataclasses
#   --arpa FILE                  use this ARPA LM (e.g. LibriSpeech's 3-gram.pruned.1e-7.arpa.gz) instead of
#                                training one on the transcripts (prepare-lang --arpa; needs --lexicon)
#   --lm-order N --self-loop-scale X --acoustic-scale X (stored with the graph; defaults: GraphConfig,
#                                SearchConfig) --acoustic-scales "a,b,c"
#   --word-insertion-penalties "0,0.5,1"   dev sweep of the cost per word, each with every acoustic scale
#                                (Kaldi's score.sh grid; default none: the model's stored penalty, 0)
#   --decode-opts "..."          extra options of every 'hybrid-asr decode-dataset' (search settings, e.g.
#                                "--backend k2"; defaults: SearchConfig)
#   --threads N                  torch threads of each command (default 2); features (compute-features),
#                                alignments (align) and decodes (decode-dataset) run N local jobs of one thread
#                                each (--nj N; alignments and decodes with whole speakers per job); tree
#                                statistics (build-tree) and alignment conversion (convert-ali) too, at most one
#                                job per 5,000 utterances (fewer run in one process)
#   --cd-leaves N                context-dependent senones (stages 7-10) with a decision tree of N leaves;
#                                0 (default) stops after the monophone system. --cd-epochs "4 4": epochs
#                                of the two triphone rounds (the second after realignment)
#   --cd-arch TYPE               architecture of the final triphone model (dnn, tdnn, lstm, cldnn, tdnn_lstm; default
#                                dnn), trained on the realigned senones into exp/cd<N>/<TYPE>2
#   --cd-arch-opts "..."         extra train options of that model (e.g. "--bidirectional --right-context 40")
#   --sequence lfmmi|mmi|none    stages 11-12: fine-tune the final triphone model with lattice-free MMI
#                                (phone-LM denominator) or MMI (its HCLG as denominator) into
#                                exp/cd<N>/<TYPE>2_<criterion>, then HCLG, decode and the change against
#                                the CE model (default none) --sequence-opts "..." (train-sequence options)
#   --sequence-acoustic-scales "a,b,c"   the dev sweep of the sequence-trained model (default: --acoustic-scales)
#   --gmm true|false             Kaldi's GMM ladder in place of the flat-start DNN rounds (default false):
#                                stage 1 computes MFCC (+deltas, per-speaker CMVN; the GMMs train on the
#                                unperturbed audio; with --speed-perturb also data/mfcc/<train>_sp, whose
#                                perturbed copies are speakers of their own; with --augment and no speed
#                                perturbation data/mfcc/<train>_aug, the audio and one augmented copy),
#                                stages 3-6 train and decode the monophone GMM (exp/mono: train_mono.sh),
#                                stage 7 the triphone GMMs, each on the previous one's alignment: tri1
#                                (deltas, a tree of at most --cd-leaves leaves), tri2 (LDA+MLLT), tri3
#                                (SAT, per-speaker fMLLR) and tri3's fMLLR alignment (exp/tri3_ali; with
#                                --speed-perturb that of <train>_sp too, exp/tri3_ali_sp, as Kaldi's nnet
#                                recipes align their _sp data; <train>_aug's copies, when they keep their
#                                length (no --pad-prob), take their originals' labels: copy-ali, Kaldi's
#                                copy_ali_dir.sh, into exp/tri3_ali_aug, with their speakers' transforms);
#                                stage 8 writes fMLLR-adapted features (data/fmllr: training speakers with the transforms of that alignment, dev/test
#                                from tri3's speaker-independent first pass) and trains the final model (--cd-arch, last
#                                --cd-epochs value) on them and tri3's alignment (of the _sp or _aug split
#                                when there is one) into exp/<TYPE>_fmllr; stages 9-10 decode tri3 (two-pass) and the
#                                neural model and compare them. --gmm-acoustic-scales "a,b,c" the GMMs'
#                                dev sweep (default 0.03,...,0.1; --mono-acoustic-scales "a,b,c" the monophone
#                                GMM's, default the same) --gmm-graph-opts "..." their make-graph
#                                options (default: self-loop scale 0.1, stored acoustic scale 0.05, as
#                                Kaldi's mkgraph.sh and its 1/12 scale for GMMs) --gmm-opts "..." extra options
#                                of every train-gmm (defaults: the GMM training config dataclasses)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

stage=1; stop_stage=100
manifests=""; lexicon=""; cmudict=false; units=(); classes="$root/lexicon/arpabet_classes.txt"
data_dir=data; exp_dir=exp
train_split=train; test_split=test; dev_fraction=0; dev_groups=""; dev_split=""
sample_rate=16000; num_mel_bins=40; cmvn=utterance; speed_perturb="0.9,1.1"; augment=false; augment_opts=""
num_rounds=5; epochs="2 2 3 3 4"; train_opts=""
lm_order=3; arpa=""; self_loop_scale=""; acoustic_scale=""; acoustic_scales="0.1,0.15,0.2,0.25"; penalties=""
threads=2; decode_opts=""
cd_leaves=0; cd_epochs="4 4"; cd_arch=dnn; cd_arch_opts=""
sequence=none; sequence_opts=""; sequence_acoustic_scales=""
gmm=false; gmm_acoustic_scales="0.03,0.04,0.05,0.06,0.07,0.08,0.1"; mono_acoustic_scales=""; gmm_graph_opts="--self-loop-scale 0.1 --acoustic-scale 0.05"; gmm_opts=""

while [[ $# -gt 0 ]]; do
  case $1 in
    --stage) stage=$2 ;; --stop-stage) stop_stage=$2 ;;
    --manifests) manifests=$2 ;; --lexicon) lexicon=$2 ;; --cmudict) cmudict=true; shift; continue ;;
    --graphemes) units=(--graphemes); shift; continue ;; --subwords) units=(--subwords "$2") ;;
    --classes) classes=$2 ;;
    --data-dir) data_dir=$2 ;; --exp-dir) exp_dir=$2 ;;
    --train-split) train_split=$2 ;; --test-split) test_split=$2 ;;
    --dev-fraction) dev_fraction=$2 ;; --dev-groups) dev_groups=$2 ;; --dev-split) dev_split=$2 ;;
    --sample-rate) sample_rate=$2 ;; --num-mel-bins) num_mel_bins=$2 ;; --cmvn) cmvn=$2 ;;
    --speed-perturb) speed_perturb=$2 ;; --augment) augment=$2 ;; --augment-opts) augment_opts=$2 ;;
    --num-rounds) num_rounds=$2 ;; --epochs) epochs=$2 ;; --train-opts) train_opts=$2 ;;
    --lm-order) lm_order=$2 ;; --arpa) arpa=$2 ;; --self-loop-scale|--transition-scale) self_loop_scale=$2 ;;
    --acoustic-scale) acoustic_scale=$2 ;; --acoustic-scales) acoustic_scales=$2 ;;
    --word-insertion-penalties) penalties=$2 ;;
    --threads) threads=$2 ;; --decode-opts) decode_opts=$2 ;;
    --cd-leaves) cd_leaves=$2 ;; --cd-epochs) cd_epochs=$2 ;;
    --cd-arch) cd_arch=$2 ;; --cd-arch-opts) cd_arch_opts=$2 ;;
    --sequence) sequence=$2 ;; --sequence-opts) sequence_opts=$2 ;;
    --sequence-acoustic-scales) sequence_acoustic_scales=$2 ;;
    --gmm) gmm=$2 ;; --gmm-acoustic-scales) gmm_acoustic_scales=$2 ;; --gmm-graph-opts) gmm_graph_opts=$2 ;;
    --mono-acoustic-scales) mono_acoustic_scales=$2 ;;
    --gmm-opts) gmm_opts=$2 ;;
    -h|--help) sed -n '2,/^set /{/^#/p}' "$0"; exit 0 ;;
    *) echo "hybrid.sh: unknown option $1" >&2; exit 1 ;;
  esac
  shift 2
done
[[ -n $manifests ]] || { echo "hybrid.sh: --manifests DIR is required" >&2; exit 1; }
[[ -n $lexicon || $cmudict == true || ${#units[@]} -gt 0 ]] || {
  echo "hybrid.sh: --lexicon FILE, --cmudict, --graphemes or --subwords N is required" >&2; exit 1; }

export OMP_NUM_THREADS=$threads MKL_DEBUG_CPU_TYPE=5
if [[ -x $root/.venv/bin/hybrid-asr ]]; then
  hybrid_asr=("$root/.venv/bin/hybrid-asr" --num-threads "$threads")
  python=$root/.venv/bin/python
else
  hybrid_asr=(hybrid-asr --num-threads "$threads")
  python=python3
fi

log() { echo "$(date '+%F %T') (stage ${cur_stage:-?}) $*"; }
run_stage() { cur_stage=$1; [[ $stage -le $1 && $stop_stage -ge $1 ]]; }
feats=$data_dir/fbank
[[ $gmm == true ]] && feats=$data_dir/mfcc_deltas  # the monophone and tri1 GMMs; tri2/tri3: $mfcc
mfcc=$data_dir/mfcc; fmllr=$data_dir/fmllr
if [[ $dev_fraction != 0 ]]; then
  dev_split=dev
  if run_stage 1 && [[ ! -f $manifests/supervisions_${train_split}_nodev.jsonl.gz ]]; then
    cur_stage=1; log "holding out ${dev_fraction} of the $train_split speakers as $dev_split"
    "${hybrid_asr[@]}" hold-out-speakers "$manifests" --source "$train_split" --rest "${train_split}_nodev" \
      --dev "$dev_split" --fraction "$dev_fraction" ${dev_groups:+--groups "$dev_groups"}
  fi
  train_split=${train_split}_nodev
fi

# the training split of the neural model on fMLLR features (--gmm true): with the speed-perturbed copies
# (<train>_sp, augmented with --augment), or with one augmented copy of each utterance (<train>_aug)
copy_suffix=""
if [[ $gmm == true && -n $speed_perturb ]]; then copy_suffix=_sp
elif [[ $gmm == true && $augment == true ]]; then copy_suffix=_aug
fi
nn_split=$train_split$copy_suffix
copies=(); copies_what=""  # compute-features options and words for the training copies
[[ -n $speed_perturb ]] && copies=(--speed-perturb "$speed_perturb") && copies_what="speed perturbation $speed_perturb"
if [[ $augment == true ]]; then
  read -r -a aug <<< "$augment_opts"
  copies+=(--augment ${aug[@]+"${aug[@]}"}); copies_what="${copies_what:-one copy}, augmented"
fi
if run_stage 1 && [[ $gmm == true ]]; then
  for split in "$train_split" $dev_split "$test_split"; do
    for out in "$feats/$split" "$mfcc/$split"; do
      if [[ -f $out/index.json ]]; then log "$out exists, skipping"; continue; fi
      deltas=(); [[ $out == "$feats/$split" ]] && deltas=(--deltas)
      log "MFCC features of $split ${deltas[*]:-} (per-speaker CMVN) -> $out"
      "${hybrid_asr[@]}" compute-features "$manifests" "$split" "$out" --kind mfcc "${deltas[@]}" \
        --sample-rate "$sample_rate" --num-mel-bins "$num_mel_bins" --cmvn speaker --nj "$threads"
    done
  done
  if [[ $nn_split != "$train_split" && ! -f $mfcc/$nn_split/index.json ]]; then
    log "MFCC features of $train_split with $copies_what (per-speaker CMVN) -> $mfcc/$nn_split"
    "${hybrid_asr[@]}" compute-features "$manifests" "$train_split" "$mfcc/$nn_split" --kind mfcc \
      --sample-rate "$sample_rate" --num-mel-bins "$num_mel_bins" --cmvn speaker "${copies[@]}" --nj "$threads"
  elif [[ $nn_split != "$train_split" ]]; then log "$mfcc/$nn_split exists, skipping"
  fi
elif run_stage 1; then
  for split in "$train_split" $dev_split "$test_split"; do
    if [[ -f $feats/$split/index.json ]]; then log "fbank $split exists, skipping"; continue; fi
    sp=()
    [[ $split == "$train_split" ]] && sp=(${copies[@]+"${copies[@]}"})
    log "fbank features of $split ${sp[*]:-}"
    "${hybrid_asr[@]}" compute-features "$manifests" "$split" "$feats/$split" --kind fbank \
      --sample-rate "$sample_rate" --num-mel-bins "$num_mel_bins" --cmvn "$cmvn" "${sp[@]}" --nj "$threads"
  done
fi

if run_stage 2; then
  if [[ -f $data_dir/lang/lang.json ]]; then log "lang dir exists, skipping"
  else
    src=(--lexicon "$lexicon"); [[ $cmudict == true ]] && src=(--cmudict)
    [[ ${#units[@]} -gt 0 ]] && src=("${units[@]}")
    lm=(--lm-order "$lm_order"); what="${lm_order}-gram LM on the $train_split transcripts"
    [[ -n $arpa ]] && lm=(--arpa "$arpa") && what="the LM $arpa"
    log "lexicon ${src[*]}, L, $what, G"
    "${hybrid_asr[@]}" prepare-lang "$manifests" "$data_dir/lang" "${src[@]}" --train-split "$train_split" "${lm[@]}"
  fi
fi

if run_stage 3; then
  if [[ -f $exp_dir/ali0/ali.npz ]]; then log "flat-start alignment exists, skipping"
  else
    log "flat-start alignment"
    "${hybrid_asr[@]}" align "$feats/$train_split" "$data_dir/lang" "$exp_dir/ali0" --flat-start --nj "$threads"
  fi
fi

# train_model ALI_DIR MODEL_DIR EPOCHS WHAT [ARCH [OPTS [FEATS [SPLIT]]]]: train a model (default: a DNN, on
# $feats/$train_split) on the alignments unless it exists; --resume continues a run that was interrupted
train_model() {
  local arch=${5:-dnn} opts
  read -r -a opts <<< "$train_opts ${6:-}"
  if [[ -f $2/bundle.json ]]; then log "$4 model exists, skipping"; return; fi
  log "$4: training the $arch on $1 ($3 epochs)"
  "${hybrid_asr[@]}" train "${7:-$feats}/${8:-$train_split}" "$1" "$2" --model "$arch" --epochs "$3" --resume "${opts[@]}"
}
# train_gmm FEATS ALI_DIR MODEL_DIR WHAT [TRAIN-GMM OPTIONS...]: a GMM system unless it exists
train_gmm() {
  local gopts
  read -r -a gopts <<< "$gmm_opts"
  if [[ -f $3/bundle.json ]]; then log "$4 exists, skipping"; return; fi
  log "$4: train-gmm on $2 ${*:5} $gmm_opts"
  "${hybrid_asr[@]}" train-gmm "$1/$train_split" "$data_dir/lang" "$2" "$3" "${@:5}" ${gopts[@]+"${gopts[@]}"}
}
# align_with MODEL_DIR ALI_DIR WHAT [FEATS [SPLIT]]: Viterbi-align the training set (default $feats/$train_split)
# unless the alignments exist
align_with() {
  if [[ -f $2/ali.npz ]]; then log "$3 alignment exists, skipping"; return; fi
  log "$3: Viterbi alignment with $1"
  "${hybrid_asr[@]}" align "${4:-$feats}/${5:-$train_split}" "$data_dir/lang" "$2" --model "$1" --nj "$threads"
}
# make_graph MODEL_DIR WHAT [MAKE-GRAPH OPTIONS...]: the decoding graph (HLG, or HCLG for a senone
# model) unless it exists
make_graph() {
  if [[ -f $1/graph_info.json ]]; then log "$2 exists, skipping"; return; fi
  log "building $2 for $1 ${*:3}"
  "${hybrid_asr[@]}" make-graph "$1" "$data_dir/lang" ${acoustic_scale:+--acoustic-scale "$acoustic_scale"} \
    ${self_loop_scale:+--self-loop-scale "$self_loop_scale"} "${@:3}"
}
# stats_field FILE KEY: a number of a JSON file (0 when absent)
stats_field() { "$python" -c 'import json, sys; print("%g" % json.load(open(sys.argv[1])).get(sys.argv[2], 0))' "$@"; }
# decode_test MODEL_DIR WHAT [FEATS [SCALES]]: decode unless done and print the WER. With a dev set: the
# acoustic-scale sweep (default $acoustic_scales; with --word-insertion-penalties, each scale with each
# penalty) on dev, the best setting stored as the model's default, then the test set at that setting only.
# Without one: the sweep on the test set. Sets $best_scale, $best_penalty and $best (the setting's name in
# wer_ac<name>.txt).
decode_test() {
  local out sweep_split=$test_split dopts dfeats=${3:-$feats} scales=${4:-$acoustic_scales}
  read -r -a dopts <<< "$decode_opts"
  [[ -n $dev_split ]] && sweep_split=$dev_split
  out=$1/decode_$sweep_split
  if [[ -f $out/decode_stats.json ]]; then log "$2 $sweep_split decode exists, skipping"
  else
    log "decoding $sweep_split with the $2 model (acoustic scales $scales" \
      "${penalties:+, word insertion penalties $penalties})"
    "${hybrid_asr[@]}" decode-dataset "$1" "$dfeats/$sweep_split" "$out" --acoustic-scales "$scales" \
      ${penalties:+--word-insertion-penalties "$penalties"} \
      ${dev_split:+--store-best} ${dev_groups:+--spk2group "$dev_groups"} --nj "$threads" ${dopts[@]+"${dopts[@]}"}
  fi
  best_scale=$(stats_field "$out/decode_stats.json" best_acoustic_scale)
  best_penalty=$(stats_field "$out/decode_stats.json" best_word_insertion_penalty)
  if [[ -z $dev_split ]]; then
    best_scale=$(stats_field "$1/search_config.json" acoustic_scale)
    best_penalty=$(stats_field "$1/search_config.json" word_insertion_penalty)
  fi
  best=$best_scale; [[ $best_penalty == 0 ]] || best=${best_scale}_wip$best_penalty
  if [[ -z $dev_split && ! -f $out/wer_ac$best.txt ]]; then
    best_scale=$(stats_field "$out/decode_stats.json" best_acoustic_scale)
    best_penalty=$(stats_field "$out/decode_stats.json" best_word_insertion_penalty)
    best=$best_scale; [[ $best_penalty == 0 ]] || best=${best_scale}_wip$best_penalty
    log "the model's search setting is not in the sweep ($scales): reporting the sweep's best, $best," \
      "chosen on the $test_split set itself (use a dev set: --dev-fraction or --dev-split)"
  fi
  if [[ -n $dev_split ]]; then
    log "$2 $dev_split WER at the best acoustic scale $best_scale, word insertion penalty $best_penalty:"
    head -1 "$out/wer_ac$best.txt"
    out=$1/decode_$test_split
    if [[ -f $out/decode_stats.json ]]; then log "$2 $test_split decode exists, skipping"
    else
      log "decoding $test_split with the $2 model at the dev-chosen acoustic scale $best_scale, penalty $best_penalty"
      "${hybrid_asr[@]}" decode-dataset "$1" "$dfeats/$test_split" "$out" --acoustic-scales "$best_scale" \
        --word-insertion-penalties "$best_penalty" ${dev_groups:+--spk2group "$dev_groups"} --nj "$threads" \
        ${dopts[@]+"${dopts[@]}"}
    fi
  fi
  log "$2 $test_split WER at acoustic scale $best_scale, word insertion penalty $best_penalty ($out/wer_ac$best.txt):"
  head -2 "$out/wer_ac$best.txt"
}

if run_stage 4 && [[ $gmm == true ]]; then
  train_gmm "$feats" "$exp_dir/ali0" "$exp_dir/mono" "monophone GMM"
elif run_stage 4; then
  read -r -a epoch_list <<< "$epochs"
  for ((r = 1; r <= num_rounds; r++)); do
    train_model "$exp_dir/ali$((r - 1))" "$exp_dir/dnn$r" "${epoch_list[$((r - 1))]:-${epoch_list[-1]}}" "round $r"
    if [[ $r -lt $num_rounds ]]; then align_with "$exp_dir/dnn$r" "$exp_dir/ali$r" "round $r"; fi
  done
fi

final=$exp_dir/dnn$num_rounds
read -r -a gmm_graph <<< "$gmm_graph_opts"
[[ $gmm == true ]] && final=$exp_dir/mono

if run_stage 5; then
  if [[ $gmm == true ]]; then make_graph "$final" HLG "${gmm_graph[@]}"; else make_graph "$final" HLG; fi
fi

# summary MODEL_DIR [BASELINE_MODEL_DIR]: frame accuracy (neural models), RTF, dev/test WER at $best
# (set by decode_test; the baseline's at its own stored setting) and the relative change
summary() {
  "$python" - "$1" "$test_split" "${dev_split:-}" "$best" "${2:-}" <<'PY'
import json, os, sys
model, test, dev, ac, base = sys.argv[1:6]
def stats(m, split):
    f = os.path.join(m, f"decode_{split}", "decode_stats.json")
    return json.load(open(f)) if split and os.path.exists(f) else None
m = [json.loads(x) for x in open(os.path.join(model, "metrics.jsonl"))][-1]
t, d = stats(model, test), stats(model, dev)
if d:
    print(f"{dev} WER: " + ", ".join(f"{k}: {v:.2f}%" for k, v in d["wer"].items()) + f" (best: {ac})")
acc = f"; held-out frame accuracy {m['valid_frame_acc']:.1f}%" if "valid_frame_acc" in m else ""
setting = "acoustic scale " + ac.replace("_wip", ", word insertion penalty ")
print(f"{test} WER {t['wer'][ac]:.2f}% at {setting}{acc}; decoding RTF {t['rtf'][ac]:.4f} "
      f"({t['audio_seconds']:.0f} s of audio, acoustic model + search, features excluded)")
b = stats(base, test) if base else None
if b:
    bd = stats(base, dev)  # the baseline at its own dev-chosen setting, as the model is at its own
    bac = min(bd["wer"], key=bd["wer"].get) if bd else (ac if ac in b["wer"] else next(iter(b["wer"])))
    bw = b["wer"][bac]
    change = f": {100 * (bw - t['wer'][ac]) / bw:.1f}% relative reduction" if bw > 0 else ""
    print(f"{test} WER {bw:.2f}% ({base}) -> {t['wer'][ac]:.2f}% ({model}){change}")
PY
}

if run_stage 6 && [[ $gmm == true ]]; then
  decode_test "$final" "monophone GMM" "$feats" "${mono_acoustic_scales:-$gmm_acoustic_scales}"
  summary "$final"
elif run_stage 6; then
  decode_test "$final" monophone
  summary "$final"
fi

# ---------------------------------------------------------------- context-dependent senones
[[ $cd_leaves -gt 0 ]] || exit 0
read -r -a cd_epoch_list <<< "$cd_epochs"
if [[ $gmm == true ]]; then
  # ------------------------------------------------------------ the GMM ladder, then a neural model
  # on tri3's fMLLR features and alignment (Kaldi: train_deltas, train_lda_mllt, train_sat,
  # align_fmllr, then nnet on fMLLR features)
  tri3=$exp_dir/tri3
  ce=$exp_dir/${cd_arch}_fmllr
  nn_ali=${tri3}_ali$copy_suffix
  seq_ali=$nn_ali
  if run_stage 7; then
    align_with "$final" "$exp_dir/mono_ali" "monophone GMM"
    if [[ -f $exp_dir/tri1/tree/tree.json ]]; then log "tri1 tree exists, skipping"
    else
      log "tri1 decision tree (at most $cd_leaves leaves)"
      "${hybrid_asr[@]}" build-tree "$feats/$train_split" "$exp_dir/mono_ali" "$exp_dir/tri1/tree" --num-leaves "$cd_leaves" \
        --nj "$threads"
    fi
    if [[ -f $exp_dir/tri1_ali0/ali.npz ]]; then log "tri1 senone alignment exists, skipping"
    else
      log "converting $exp_dir/mono_ali to tri1's senones"
      "${hybrid_asr[@]}" convert-ali "$exp_dir/mono_ali" "$exp_dir/tri1/tree" "$exp_dir/tri1_ali0" --nj "$threads"
    fi
    train_gmm "$feats" "$exp_dir/tri1_ali0" "$exp_dir/tri1" "tri1 (triphone GMM on deltas)"
    align_with "$exp_dir/tri1" "$exp_dir/tri1_ali" tri1
    train_gmm "$mfcc" "$exp_dir/tri1_ali" "$exp_dir/tri2" "tri2 (LDA+MLLT)" --lda-mllt --num-leaves "$cd_leaves"
    align_with "$exp_dir/tri2" "$exp_dir/tri2_ali" tri2 "$mfcc"
    train_gmm "$mfcc" "$exp_dir/tri2_ali" "$tri3" "tri3 (SAT)" --sat "$exp_dir/tri2" --num-leaves "$cd_leaves"
    align_with "$tri3" "${tri3}_ali" "tri3 (fMLLR)" "$mfcc"
    if [[ $copy_suffix == _aug && $(stats_field "$mfcc/$nn_split/augment_config.json" pad_prob) == 0 ]]; then
      # copies of the same length (no padding): each labelled as its original (Kaldi's copy_ali_dir.sh)
      if [[ -f $nn_ali/ali.npz ]]; then log "the training copies' alignment exists, skipping"
      else
        log "the training copies' alignment: their originals' in ${tri3}_ali, their speakers' fMLLR transforms"
        "${hybrid_asr[@]}" copy-ali "${tri3}_ali" "$mfcc/$nn_split" "$nn_ali" --model "$tri3"
      fi
    elif [[ $nn_split != "$train_split" ]]; then
      align_with "$tri3" "$nn_ali" "tri3 (fMLLR), the training copies" "$mfcc" "$nn_split"
    fi
  fi
  if run_stage 8; then
    make_graph "$tri3" HCLG "${gmm_graph[@]}"
    for split in "$nn_split" $dev_split "$test_split"; do
      if [[ -f $fmllr/$split/index.json ]]; then log "fMLLR features of $split exist, skipping"; continue; fi
      how=(--transcripts first-pass); what="the first-pass transcripts"
      if [[ $split == "$nn_split" && -f $nn_ali/fmllr.npz ]]; then how=(--transforms "$nn_ali"); what="$nn_ali"
      elif [[ $split == "$nn_split" ]]; then how=(--transcripts reference); what="the reference transcripts"
      fi
      log "fMLLR features of $split (transforms from $what)"
      "${hybrid_asr[@]}" adapt-features "$tri3" "$data_dir/lang" "$mfcc/$split" "$fmllr/$split" "${how[@]}"
    done
    train_model "$nn_ali" "$ce" "${cd_epoch_list[-1]}" "$cd_arch on fMLLR features" "$cd_arch" "$cd_arch_opts" "$fmllr" \
      "$nn_split"
  fi
  if run_stage 9; then
    make_graph "$ce" HCLG
  fi
  if run_stage 10; then
    decode_test "$tri3" "tri3 (SAT GMM, two-pass fMLLR)" "$mfcc" "$gmm_acoustic_scales"
    summary "$tri3" "$final"
    decode_test "$ce" "$cd_arch on fMLLR features" "$fmllr"
    summary "$ce" "$tri3"
  fi
  feats=$fmllr
else
  mono_ali=$exp_dir/ali$num_rounds
  cd=$exp_dir/cd$cd_leaves
  ce=$cd/${cd_arch}2
  seq_ali=$cd/ali1

  if run_stage 7; then
    align_with "$final" "$mono_ali" "final monophone"
    if [[ -f $cd/tree/tree.json ]]; then log "tree exists, skipping"
    else
      log "decision tree with $cd_leaves leaves"
      "${hybrid_asr[@]}" build-tree "$feats/$train_split" "$mono_ali" "$cd/tree" --num-leaves "$cd_leaves" --nj "$threads" \
        ${classes:+--classes "$classes"}
    fi
    if [[ -f $cd/ali0/ali.npz ]]; then log "senone alignment exists, skipping"
    else
      log "converting $mono_ali to senones"
      "${hybrid_asr[@]}" convert-ali "$mono_ali" "$cd/tree" "$cd/ali0" --nj "$threads"
    fi
  fi

  if run_stage 8; then
    train_model "$cd/ali0" "$cd/dnn1" "${cd_epoch_list[0]:-4}" "triphone round 1"
    align_with "$cd/dnn1" "$cd/ali1" "triphone round 1"
    train_model "$cd/ali1" "$ce" "${cd_epoch_list[1]:-4}" "triphone round 2" "$cd_arch" "$cd_arch_opts"
  fi

  if run_stage 9; then
    make_graph "$ce" HCLG
  fi

  if run_stage 10; then
    decode_test "$ce" "triphone $cd_arch"
    summary "$ce" "$final"
  fi
fi

# ---------------------------------------------------------------- sequence training
[[ $sequence != none ]] || exit 0
seq=${ce}_$sequence

if run_stage 11; then
  if [[ -f $seq/bundle.json ]]; then log "$sequence model exists, skipping"
  else
    read -r -a sopts <<< "$sequence_opts"
    log "$sequence training of $ce on $seq_ali"
    "${hybrid_asr[@]}" train-sequence "$ce" "$feats/$nn_split" "$data_dir/lang" "$seq_ali" "$seq" \
      --criterion "$sequence" --resume "${sopts[@]}"
  fi
  make_graph "$seq" HCLG
fi

if run_stage 12; then
  [[ -n $sequence_acoustic_scales ]] && acoustic_scales=$sequence_acoustic_scales
  decode_test "$seq" "$cd_arch + $sequence"
  summary "$seq" "$ce"
fi
