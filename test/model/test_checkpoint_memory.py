"""Loading reads each tensor once from the memory-mapped file: no second full copy in RAM."""
import json
import subprocess
import sys

import torch
from conftest import GOLDEN

from locate_ros.model import LocateAnything, LocateAnythingConfig, save_pretrained

PROBE = r"""
import sys, torch
from locate_ros.model import load_model

def status(key):  # kB figures of /proc/self/status
    return next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith(key + ":"))

torch.set_num_threads(1)
warm = load_model(sys.argv[1], dtype=torch.bfloat16)  # a first load pulls in libraries and allocator pools
sum(float(p.sum()) for p in warm.parameters())
del warm
base, anon = status("VmRSS"), status("RssAnon")
open("/proc/self/clear_refs", "w").write("5")  # reset the peak (VmHWM) to the current RSS
model = load_model(sys.argv[1], dtype=torch.bfloat16)
touched = sum(float(p.sum()) for p in model.parameters())  # every weight really in memory
print(status("VmHWM") - base, status("VmRSS") - base, status("RssAnon") - anon)
"""


def test_loading_a_bf16_checkpoint_costs_about_its_size_in_memory(tmp_path):
    raw = json.loads((GOLDEN / "tiny" / "config.json").read_text())
    raw["text_config"].update(hidden_size=512, intermediate_size=1024, num_hidden_layers=4)
    with torch.device("meta"):
        meta = LocateAnything(LocateAnythingConfig.from_dict(raw))
    model = meta.to_empty(device="cpu").to(torch.bfloat16)
    for p in model.parameters():
        p.data.fill_(0.01)
    out = save_pretrained(model, tmp_path / "ckpt", dtype=torch.bfloat16)
    size = (out / "model.safetensors").stat().st_size
    assert size > 150e6
    del model
    res = subprocess.run([sys.executable, "-c", PROBE, str(out)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    peak, resident, anon = (int(v) for v in res.stdout.split())
    print(f"file {size / 1e6:.0f} MB; RSS peaked {peak / 1e6:.0f} MB above its start, {resident / 1e6:.0f} MB "
          f"after touching every weight, of which {anon / 1e6:.0f} MB anonymous (copied) memory")
    assert resident > 0.9 * size  # every weight is really in memory (the touch read it) ...
    assert peak < 1.35 * size  # ... it was never held twice (a second copy would be >= 2x) ...
    assert anon < 0.25 * size  # ... and in its own dtype it is the file's pages, not a copy
