#!/usr/bin/env bash
# One fresh training schedule of the demo model on a GPU machine, sized to a wall-clock budget.
# usage: [STEPS=N] tools/gpu_train.sh NAME INIT SEED BUDGET_S EXAMPLES_PER_STEP [MORE TRAINER FLAGS]
#
# Why sized by time: a lent GPU machine runs one command for at most 10 minutes, and the cosine
# schedule needs its length up front. So a 61-step probe (thrown away, timed over steps 20-60) measures seconds per step,
# and the schedule gets as many steps as fit in what is left of BUDGET_S. STEPS=N skips the probe
# and trains N steps (to repeat a recorded run; the probe's count is in its output). The flags are the CPU
# recipe's fresh_schedule (tools/train_demo_model.sh) with the options every run since v10 keeps.
# Writes runs/NAME; when $OUT is set (the device tool), also NAME.tar.part-* (the run without its
# optimizer state, in pieces under the tool's 16 MiB per-file limit) and the train log there.
set -euo pipefail
cd "$(dirname "$0")/.."
name=$1 init=$2 seed=$3 budget=$4 examples=$5
shift 5
t0=$(date +%s)
py=${PYTHON:-python3}
workers=${WORKERS:-$(( $(nproc) - 2 ))}
flags=(--init "$init" --families objects --image-size 144 256 --lr 3e-4 --ground-weight 1
       --vision-aid-weight 1 --freeze-coord-embeddings --negative-share 0 --ground-layer 2
       --null-smoothing 0.03 --examples-per-step "$examples" --seed "$seed" --data-workers "$workers" "$@")
export PYTHONUNBUFFERED=1
if [ -e "runs/$name" ]; then echo "runs/$name exists: this starts a fresh schedule, so give a new NAME" >&2; exit 1; fi
steps=${STEPS:-}
if [ -z "$steps" ]; then
    probe=/tmp/probe_$name
    rm -rf "$probe"
    $py -m locate_ros.training.train --out "$probe" "${flags[@]}" --steps 100000 --stop-after 61 \
        --save-every 100000 >"$probe.log" 2>&1 || { tail -c 3000 "$probe.log"; exit 1; }
    s_per_step=$($py -c "import json,sys; r={d['step']: d['elapsed_s'] for d in map(json.loads, open(sys.argv[1]))}; print((r[60]-r[20])/40)" "$probe/train_log.jsonl")
    left=$(( budget - ($(date +%s) - t0) - 45 ))  # 45 s: start-up, the final save and packing
    steps=$($py -c "print(int($left / $s_per_step))")
    echo "probe: $s_per_step s/step with $examples examples/step, $workers data workers -> $steps steps in ${left}s"
fi
$py -m locate_ros.training.train --out "runs/$name" "${flags[@]}" --steps "$steps" >"/tmp/$name.log" 2>&1 \
    || { tail -c 3000 "/tmp/$name.log"; exit 1; }
tail -n 1 "runs/$name/train_log.jsonl"
echo "trained $name: $steps steps, $(( $(date +%s) - t0 )) s in all"
if [ -n "${OUT:-}" ]; then
    tar -cf "/tmp/$name.tar" --exclude optimizer.safetensors -C runs "$name"
    split -b 15M "/tmp/$name.tar" "$OUT/$name.tar.part-"
    cp "runs/$name/train_log.jsonl" "$OUT/$name.train_log.jsonl"
fi
