#!/usr/bin/env bash
# Training the bundled demo checkpoint (locate_ros/demo_model): the current candidate recipe, and the
# record of every attempt so far. NONE OF THEM LOCALISES YET (see README "Status"); when one does,
# copy its runs/<name>/{config.json,model.safetensors,tokenizer.json,tokenizer_config.json,
# special_tokens_map.json,chat_template.json,preprocessor_config.json,processor_config.json,
# generation_config.json} into locate_ros/demo_model/ and it becomes the default model.
#
# Attempts (2-core CPU, ~1.0-1.2 s per step of 8 packed samples, ModelSize() = 4.5M parameters):
#   demo_s0  all families, from scratch, seed 0, --coord-sigma 4, 1250 of 4000 steps
#   demo_s1  from demo_s0, shape families, seed 1, --coord-sigma 4, 1500 of 2500 steps
#   demo_s2  from demo_s1, shape families, seed 2, --coord-sigma 0, ~400 of 2000 steps
#            -> answer format and <ref> copying learned; image ignored (vision features collapsed to
#               one vector, image_gain 0, first coordinate at chance): every answer <box>None</box>
#   demo_z0  from scratch with residual branches initialised at zero, seed 10, ~450 steps
#            -> vision features collapsed again by step 250
#   demo_f0  from scratch, zero-initialised residual branches, vision tower frozen at its random
#            initialisation, seed 11, 750 steps
#            -> the ViT features stay diverse, but the projector output grows a component common to
#               all tokens (norm 155, differences 0.3%): attention over the image is diffuse,
#               image_gain -0.06, first coordinate still at chance
#   demo_f1  (below) as demo_f0 with lr 3e-4, seed 12, ~650 steps: image_gain -0.03, no better
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ros_env.sh 2>/dev/null || source .venv/bin/activate
python -m locate_ros.training.train --out runs/demo_f1 --families objects dense pointing referring \
    --steps 2000 --examples-per-step 8 --lr 3e-4 --warmup-steps 100 --coord-sigma 0 --save-every 250 \
    --log-every 10 --seed 12 --freeze-vision
