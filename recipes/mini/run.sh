#!/usr/bin/env bash
# The mini recipe, end to end on a CPU: synthetic corpus -> stage 1 (Whisper tiny.en + task tags) -> CTC pre-stage
# (adaptor) -> stage 2 (SmolLM2 + LoRA, ASR+X) -> export the trained tensors -> evaluate the exported models.
#
#   recipes/mini/run.sh [--stage N] [--stop-stage M] [--resume] [--hours H] [--work DIR] [--data DIR]
#                       [--stage1 MODEL]
#
# Stages: 0 synth, 1 stage 1, 2 CTC pre-stage, 3 stage 2, 4 export to models/, 5 eval on the test split.
# Status (recipes/mini/RESULTS.md section 8): every stage works; the committed models/mini (this script's stages 2-3
# from models/mini-stage1) gets ASR WER 9.7% (target 10%), gender 100% and every label task far above chance on
# held-out voices (mini-stage1: WER 0.14%, gender 98%).
# --stage1 MODEL: the stage-1 model whose encoder the CTC pre-stage starts from (default: the newest checkpoint of
# WORK/stage1; `--stage 2 --stage1 models/mini-stage1` reuses the committed release instead of training stage 1).
# Every stage only calls the osum CLI. --resume continues a cut training stage from its newest checkpoint;
# the synthetic corpus is kept when it exists and `osum eval` continues by itself.
set -euo pipefail
cd "$(dirname "$0")/../.."

stage=0 stop_stage=5 resume="" hours=3 work=exp/mini data=data/synth models=models stage1=""
while [ $# -gt 0 ]; do
  case "$1" in
    --stage) stage=$2; shift 2 ;;
    --stop-stage) stop_stage=$2; shift 2 ;;
    --resume) resume=--resume; shift ;;
    --hours) hours=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --data) data=$2; shift 2 ;;
    --models) models=$2; shift 2 ;;
    --stage1) stage1=$2; shift 2 ;;
    *) echo "unknown option $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done
osum=${OSUM:-$( [ -x .venv/bin/osum ] && echo .venv/bin/osum || echo osum )}
train_set="data.train=[{path: $data/train.jsonl}]"
# every 8th test clip (all tasks, held-out voices): the validation loss of the learning curves in RESULTS.md
valid_set="data.valid=[{path: $data/valid.jsonl}]"

latest() {  # newest checkpoint of a training folder
  local found
  found=$(ls -d "$1"/checkpoints/step_* 2>/dev/null | sort | tail -n 1)
  [ -n "$found" ] || { echo "no checkpoint in $1/checkpoints: run its stage first" >&2; exit 1; }
  echo "$found"
}
log() { echo "[$(date '+%H:%M:%S')] $*"; }
valid_list() {  # the validation list of stages 2 and 3, made from the test split when missing
  [ -f "$data/valid.jsonl" ] || awk 'NR % 8 == 1' "$data/test.jsonl" > "$data/valid.jsonl"
}

if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ]; then
  if [ -f "$data/test.jsonl" ]; then
    log "stage 0: $data exists, kept"
  else
    log "stage 0: synthetic corpus, $hours h"
    $osum data synth "$data" --hours "$hours" --seed 0 --flite-split split --jobs "$(nproc)"
  fi
fi
if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  log "stage 1: Whisper tiny.en + task tags"
  $osum train recipes/mini/stage1.yaml "$train_set" train.out_dir="$work/stage1" $resume
fi
if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  log "stage 2: CTC pre-stage of the adaptor, on stage 1's encoder"
  valid_list
  $osum train recipes/mini/ctc.yaml "$train_set" "$valid_set" train.out_dir="$work/ctc" \
    train.init_encoder="${stage1:-$(latest "$work/stage1")}" $resume
fi
if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  log "stage 3: ASR+X through SmolLM2 with LoRA"
  valid_list
  $osum train recipes/mini/stage2.yaml "$train_set" "$valid_set" train.out_dir="$work/stage2" \
    train.init="$(latest "$work/ctc")" $resume
fi
if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  log "stage 4: export the trained tensors"
  if [ -z "$stage1" ]; then $osum export "$(latest "$work/stage1")" "$models/mini-stage1" --max-mb 40; fi
  $osum export "$(latest "$work/stage2")" "$models/mini" --max-mb 40
fi
if [ "$stage" -le 5 ] && [ "$stop_stage" -ge 5 ]; then
  log "stage 5: evaluate the exported models on the held-out test split"
  for m in mini-stage1 mini; do
    $osum eval --model "$models/$m" --manifest "$data/test.jsonl" --out "$work/eval-$m"
  done
  $osum eval --compare "$work/eval-mini-stage1" "$work/eval-mini" --names mini-stage1,mini
fi
log "done"
