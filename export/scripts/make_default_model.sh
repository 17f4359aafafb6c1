#!/usr/bin/env bash
# Train the default edge model from scratch on synthetic parts, on CPU, in about an hour:
#   synth train/val/unlabeled/test sets -> teacher (dinov3-convnext-tiny, random init, full fine-tune)
#   -> distill into `nano` on unlabeled images -> evaluate both on 300 fresh images.
#
# Sized for a 2-core CPU shared with other work: 320x256 frames, 160 px training crops, a short
# schedule. With a GPU, raise FRAME, CROP, TEACHER_STEPS and STUDENT_STEPS (and --device cuda is picked
# automatically). Every stage is skipped when its output already exists, so a rerun continues.
#
# Usage: export/scripts/make_default_model.sh [RUNS_DIR]   (default: runs/default_model)
set -euo pipefail

RUNS=${1:-runs/default_model}
HV=${HV:-.venv/bin/holevision}
FRAME=${FRAME:-320x256}            # synthetic frame size (W x H)
CROP=${CROP:-160}                  # square training crop, px
BATCH=${BATCH:-8}
TRAIN_COUNT=${TRAIN_COUNT:-2000}
UNLABELED_COUNT=${UNLABELED_COUNT:-2000}
VAL_COUNT=${VAL_COUNT:-40}
TEST_COUNT=${TEST_COUNT:-300}
TEACHER_EPOCHS=${TEACHER_EPOCHS:-3}
TEACHER_STEPS=${TEACHER_STEPS:-100}   # batches per epoch: 3 x 100 x 8 = 2400 views = 1.2 passes over 2000 images
STUDENT_EPOCHS=${STUDENT_EPOCHS:-3}
STUDENT_STEPS=${STUDENT_STEPS:-84}    # 3 x 84 x 8 = 2016 views = one pass over 2000 unlabeled images
DATA=$RUNS/data

mkdir -p "$RUNS"
stamp() { echo "[$(date -u +%H:%M:%S)] $*"; }

synth() {  # name count seed
  if [ ! -f "$DATA/$1/annotations.json" ]; then
    stamp "synth $1: $2 images, seed $3, $FRAME"
    "$HV" synth --out "$DATA/$1" --count "$2" --seed "$3" --size "$FRAME" --style mixed --no-progress
  fi
}

synth train "$TRAIN_COUNT" 101
synth val "$VAL_COUNT" 202
synth unlabeled "$UNLABELED_COUNT" 303
synth test "$TEST_COUNT" 404

if [ ! -f "$RUNS/teacher/metrics.json" ] || ! grep -q "\"epoch\": $TEACHER_EPOCHS," "$RUNS/teacher/metrics.json"; then
  if [ -f "$RUNS/teacher/last.pt" ]; then
    stamp "teacher: resume"
    "$HV" train --resume "$RUNS/teacher" --epochs "$TEACHER_EPOCHS"
  else
    stamp "teacher: dinov3-convnext-tiny, random init, full, crop $CROP"
    "$HV" train --data "$DATA/train" --val "$DATA/val" --model dinov3-convnext-tiny --mode full \
      --size "$CROP" --epochs "$TEACHER_EPOCHS" --steps-per-epoch "$TEACHER_STEPS" --batch "$BATCH" --lr 1e-3 \
      --seed 0 --out "$RUNS/teacher"
  fi
fi

if [ ! -f "$RUNS/student/best.pt" ]; then
  stamp "student: distill into nano on $UNLABELED_COUNT unlabeled images"
  # The exporter picks up the student as soon as its first best.pt exists.
  ( while [ ! -f "$RUNS/student/best.pt" ]; do sleep 15; done; echo "$RUNS/student" > runs/LATEST_STUDENT ) &
  "$HV" distill --teacher "$RUNS/teacher" --student nano --images "$DATA/unlabeled" --val "$DATA/val" \
    --size "$CROP" --epochs "$STUDENT_EPOCHS" --steps-per-epoch "$STUDENT_STEPS" --batch "$BATCH" --lr 2e-3 \
    --seed 0 --out "$RUNS/student"
fi

for run in teacher student; do
  if [ ! -f "$RUNS/$run/test_metrics.json" ]; then
    stamp "eval $run on $TEST_COUNT fresh images"
    "$HV" eval --model "$RUNS/$run" --data "$DATA/test" --json "$RUNS/$run/test_metrics.json" || {
      stamp "eval $run with the subpixel fit failed; mask-only centers instead"
      "$HV" eval --model "$RUNS/$run" --data "$DATA/test" --json "$RUNS/$run/test_metrics.json" --no-refine
    }
  fi
done
mkdir -p runs && echo "$RUNS/student" > runs/LATEST_STUDENT
stamp "done: teacher $RUNS/teacher, student $RUNS/student"
