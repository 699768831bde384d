#!/usr/bin/env bash
# How the bundled demo checkpoint (locate_ros/demo_model) was trained: two stages on a 2-core CPU.
#   stage 1: all eight data-engine families, from scratch (seed 0), stopped after 1250 of 4000 scheduled steps
#   stage 2: fine-tuned from stage 1 on the shape families (objects, dense, pointing, referring), seed 1
# Then: cp runs/demo_s1/{config.json,model.safetensors,tokenizer.json,*_config.json,chat_template.json,special_tokens_map.json} locate_ros/demo_model/
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ros_env.sh 2>/dev/null || source .venv/bin/activate
python -m locate_ros.training.train --out runs/demo_s0 --steps 4000 --examples-per-step 8 --lr 1e-3 \
    --warmup-steps 150 --coord-sigma 4 --save-every 250 --log-every 10 --seed 0 --stop-after 1250
python -m locate_ros.training.train --out runs/demo_s1 --init runs/demo_s0 \
    --families objects dense pointing referring --steps 2500 --examples-per-step 8 --lr 1e-3 \
    --warmup-steps 50 --coord-sigma 4 --save-every 250 --log-every 10 --seed 1
