#!/usr/bin/env bash
# The OSUM paper's data pipeline (section 3.4) on a small corpus, end to end:
#   speech with transcripts -> SRWT labels by forced alignment (osum data align)
#                           -> ASR+VED clips by event insertion (osum data insert-events)
#                           -> SER labels kept where two labellers agree (osum data agree)
#                           -> STTC pairs from text dialogues (osum data sttc)
#   -> weighted tar shards (osum data shards) -> a few `osum train` steps of the tiny preset on them.
#
#   recipes/pipeline/run.sh [--work DIR] [--hours H]
#
# The source corpus is synthesized here (`osum data synth`, ASR and SER clips); on your own data start from your
# manifest. The two emotion labellers are the corpus's own labels (a label file) and models/mini-stage1's SER
# answers; swap in a chat endpoint (chat:URL#MODEL) or a text classifier (text-classifier:DIR). Took 94 s on
# 2 CPU cores (2026-12-07).
set -euo pipefail
cd "$(dirname "$0")/../.."
work=exp/pipeline hours=0.03
while [ $# -gt 0 ]; do
  case "$1" in
    --work) work=$2; shift 2 ;;
    --hours) hours=$2; shift 2 ;;
    *) echo "unknown option $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done
osum=${OSUM:-$( [ -x .venv/bin/osum ] && echo .venv/bin/osum || echo osum )}
log() { echo "[$(date '+%H:%M:%S')] $*"; }

log "source corpus: $hours h of ASR and SER clips"
$osum data synth "$work/src" --hours "$hours" --seed 7 --tasks asr=1,ser=1 --test-fraction 0 --jobs 1 --overwrite
log "SRWT: word times by forced alignment"
$osum data align "$work/src/train.jsonl" "$work/srwt.jsonl"
log "VED: events inserted into the speech"
$osum data insert-events "$work/src/train.jsonl" "$work/ved" --timbre 0.9,1.1
log "SER: the corpus's labels and models/mini-stage1's answers, kept where they agree"
$osum data agree "$work/src/train.jsonl" "$work/ser" --field emotion \
  --labeller "file:$work/src/train.jsonl" --labeller model:models/mini-stage1
log "STTC: spoken questions with replies"
cat > "$work/dialogues.jsonl" <<'JSON'
{"id": "q1", "question": "What is the capital of France?", "answer": "Paris is the capital of France."}
{"id": "q2", "messages": [{"role": "user", "content": "How many days are in a week?"}, {"role": "assistant", "content": "There are seven days in a week."}]}
JSON
$osum data sttc "$work/dialogues.jsonl" "$work/sttc" --tts espeak-ng:en-us,flite:slt
log "shards with mixing weights"
$osum data shards "$work/shards" srwt="$work/srwt.jsonl" ved="$work/ved/ved.jsonl@2" \
  ser="$work/ser/agreed.jsonl@3" sttc="$work/sttc/sttc.jsonl@4" --shard-size 50
log "a few training steps of the tiny preset on the shards"
train="data.train=[{path: $work/shards/srwt/shards.list, weight: 1}, {path: $work/shards/ved/shards.list, weight: 2}"
train+=", {path: $work/shards/ser/shards.list, weight: 3}, {path: $work/shards/sttc/shards.list, weight: 4}]"
$osum train recipes/pipeline/tiny.yaml "$train" train.out_dir="$work/train"
log "done: $work/shards/balance.md, $work/ser/agreement.md, $work/train"
