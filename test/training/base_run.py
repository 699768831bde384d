"""The tiny training run the trainer and LoRA tests share, and the fixed batch they score."""
import torch

from locate_ros.data import make_sample
from locate_ros.model import load_model
from locate_ros.processing import Processor
from locate_ros.training.config import TrainConfig
from locate_ros.training.objective import build_example, joint_loss, pack

CFG = TrainConfig(steps=40, examples_per_step=2, lr=3e-3, warmup_steps=5, families=("objects", "pointing"),
                  image_size=(128, 160), save_every=1000, log_every=5, coord_sigma=2.0, seed=3, tokenizer_samples=200)


def fixed_batch_loss(ckpt) -> float:
    model = load_model(ckpt)
    proc = Processor.from_pretrained(ckpt, model.cfg)
    batch = pack([build_example(make_sample(777, i, family="objects", size=(128, 160)), proc) for i in range(3)])
    with torch.no_grad():
        return joint_loss(model, batch)[0].item()
