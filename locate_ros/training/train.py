"""The trainer: data engine -> joint NTP+MTP objective -> checkpoints in the release layout.

    python -m locate_ros.training.train --out runs/demo --steps 3000            # from scratch
    python -m locate_ros.training.train --out runs/ft --init /path/to/checkpoint --freeze-vision
    python -m locate_ros.training.train --out runs/lora --init /path/to/checkpoint --lora-rank 8 --freeze-vision
    (run the same command again to resume from the newest checkpoint in --out)

From scratch it learns a small tokenizer from the data engine's text and builds the model with
`ModelSize`; with --init it fine-tunes an existing checkpoint with that checkpoint's tokenizer.
Every `save_every` steps --out holds a loadable checkpoint (config.json, model.safetensors,
tokenizer and processor files) plus `optimizer.safetensors` and `trainer_state.json`, from which
the run resumes bit-exactly (the data stream is indexed by step; with --vision-aid-weight the aid's
read-outs are in `vision_aid.safetensors`). With --lora-rank the decoder's
weights stay frozen and low-rank adapters train instead (locate_ros.training.lora); the checkpoint
holds the merged weights (release layout) and `lora.safetensors` the adapters; resuming reloads the
--init checkpoint as the base, so it must stay where it was. `train_log.jsonl` gets a line of
losses and accuracies every `log_every` steps. Uses CUDA when present.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import time
from pathlib import Path
from typing import Optional

import torch

from ..data.families import family_of, generate_samples, make_sample
from ..model.checkpoint import SIDE_FILES, load_model, save_pretrained
from ..processing import Processor, build_question
from ..testing.tiny import golden_dir
from .config import ModelSize, TrainConfig, grow_decoder, init_model, model_config
from .lora import LoRA
from .objective import VisionAid, build_example, joint_loss, pack
from .tokenizer import build_tokenizer, token_ids_config

TOKENIZER_SEED_OFFSET = 1_000_003  # the tokenizer's corpus comes from another stream than the training data
AID_LR_SCALE = 10.0  # the vision aid's read-outs (--vision-aid-weight) learn at 10 x --lr


def tokenizer_corpus(seed: int, n: int = 3000) -> list[str]:
    """Questions and labels of `n` data-engine samples: what the tokenizer will have to encode."""
    out = []
    for s in generate_samples(seed + TOKENIZER_SEED_OFFSET, n, size=(128, 160)):
        out.append(build_question(s.task, s.query))
        out += [t.label for t in s.targets]
    return out


def write_side_files(tok, out: Path) -> None:
    """tokenizer.json plus the golden tiny checkpoint's processor/chat files (the release set)."""
    out.mkdir(parents=True, exist_ok=True)
    tok.save(str(out / "tokenizer.json"))
    for name in SIDE_FILES:
        src = golden_dir() / "tiny" / name
        if name != "tokenizer.json" and src.exists():
            shutil.copy(src, out / name)
    cfg = json.loads((out / "tokenizer_config.json").read_text())
    cfg["added_tokens_decoder"] = {}  # the golden file lists the 151k-vocabulary ids; tokenizer.json has ours
    (out / "tokenizer_config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    gen_file = out / "generation_config.json"
    if gen_file.exists():  # the same: its bos/eos ids are the 151k vocabulary's
        gen = json.loads(gen_file.read_text())
        text = token_ids_config(tok)["text"]  # the ids config.json gets
        gen.update(bos_token_id=text["bos_token_id"], eos_token_id=text["eos_token_id"])
        gen_file.write_text(json.dumps(gen, indent=2) + "\n")


def lr_at(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    t = (step - cfg.warmup_steps) / max(cfg.steps - cfg.warmup_steps, 1)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + torch.cos(torch.tensor(t * torch.pi)).item()))


def batch_samples(cfg: TrainConfig, step: int):
    """The samples of training step `step` (indexed, so a resumed run sees the same data)."""
    n = cfg.examples_per_step
    indices = range(step * n, step * n + n)
    return [make_sample(cfg.seed, i, size=sample_size(cfg, i), families=cfg.families,
                        negative_share=cfg.negative_share) for i in indices]


def sample_size(cfg: TrainConfig, index: int) -> tuple[int, int]:
    """The (min, max) image side of sample `index` of the run's stream: cfg.dense_size for a dense one."""
    if cfg.dense_size is not None and family_of(cfg.seed, index, cfg.families) == "dense":
        return cfg.dense_size
    return cfg.image_size


class StepBatches(torch.utils.data.Dataset):
    """Item i = the packed batch of step `start + i`: a pure function of the step, so worker processes
    (--data-workers) produce exactly the batches the main process would, in the same order."""

    def __init__(self, cfg: TrainConfig, processor: Processor, start: int, end: int):
        self.cfg, self.processor, self.start, self.end = cfg, processor, start, end

    def __len__(self) -> int:
        return max(self.end - self.start, 0)

    def __getitem__(self, i: int):
        return pack([build_example(s, self.processor, prefix_jitter=self.cfg.prefix_jitter,
                                   rivals_anywhere=self.cfg.colour_rival_anywhere, x1_blocks=self.cfg.x1_blocks)
                     for s in batch_samples(self.cfg, self.start + i)])


def step_batches(cfg: TrainConfig, processor: Processor, start: int, end: int, workers: int):
    """The batches of steps start..end-1. Drawing and rendering ~8 ms/sample on one core is ~10% of a
    CPU step but would starve a GPU, so with `workers` > 0 they are made ahead in that many processes."""
    data = StepBatches(cfg, processor, start, end)
    if workers <= 0:
        return (data[i] for i in range(len(data)))
    return iter(torch.utils.data.DataLoader(data, batch_size=None, shuffle=False, num_workers=workers, prefetch_factor=4))


# --- optimizer state as safetensors (no pickle) ----------------------------------------------------

def save_optimizer(opt: torch.optim.AdamW, names: dict, path: Path) -> None:
    from safetensors.torch import save_file

    tensors = {}
    for p, state in opt.state.items():
        for k, v in state.items():
            tensors[f"{names[p]}.{k}"] = v.detach().cpu().contiguous().reshape(v.shape or (1,))
    save_file(tensors, str(path))


def load_optimizer(opt: torch.optim.AdamW, names: dict, path: Path) -> None:
    from safetensors.torch import load_file

    saved = load_file(str(path))
    for p, name in names.items():
        keys = [k for k in saved if k.rsplit(".", 1)[0] == name]
        if keys:
            opt.state[p] = {k.rsplit(".", 1)[1]: (saved[k].reshape(()) if k.endswith(".step") else saved[k]).to(p.device)
                            for k in keys}


# --- the loop ---------------------------------------------------------------------------------------

def trim_log(path: Path, start: int) -> None:
    """Keep the log lines of the steps before `start`. Why: a run killed between two saves has logged
    steps that the resumed run trains again (the same batches, the same numbers), and a kill in the
    middle of a write leaves a torn last line; without this the log would hold those steps twice."""
    lines = path.read_text().splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines.pop()
    path.write_text("".join(line for line in lines if json.loads(line)["step"] < start))


def train(out: Path, cfg: TrainConfig, size: ModelSize = ModelSize(), init: Optional[Path] = None,
          device: Optional[str] = None, progress: bool = True, stop_after: Optional[int] = None,
          data_workers: int = 0) -> Path:
    """Train to `cfg.steps` (resuming from `out` if it holds a run); `stop_after` ends this call after
    that many steps, with a checkpoint, as an interruption would (the schedule still spans cfg.steps).
    `data_workers` > 0 makes the batches in that many processes (the same batches)."""
    if cfg.train_only_new_layers and (not cfg.grow_layers or cfg.lora_rank):
        raise ValueError("--train-only-new-layers needs --grow-layers (and no --lora-rank)")
    out = Path(out)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda"):
        torch.set_float32_matmul_precision("high")  # TF32 matmuls: fp32 weights and checkpoints, tensor-core speed
    state_file = out / "trainer_state.json"
    start, prior_s, lora_base = 0, 0.0, None
    resuming = state_file.exists()
    if resuming:
        state = json.loads(state_file.read_text())
        saved = state["train_config"]
        cfg = TrainConfig(**{**saved, "steps": cfg.steps, "image_size": tuple(saved["image_size"]),
                             "dense_size": tuple(saved["dense_size"]) if saved.get("dense_size") else None,
                             "families": tuple(saved["families"]) if saved["families"] else None})
        start, prior_s, lora_base = state["step"], state["elapsed_s"], state.get("lora_base")
        model = load_model(out, device=device, dtype=torch.float32)
    elif init is not None:
        model = load_model(init, device=device, dtype=torch.float32)
        if cfg.grow_layers:
            model = grow_decoder(model, cfg.grow_layers, cfg.seed)
        out.mkdir(parents=True, exist_ok=True)
        for name in SIDE_FILES:
            if (Path(init) / name).exists():
                shutil.copy(Path(init) / name, out / name)
        lora_base = str(Path(init).resolve()) if cfg.lora_rank else None
    elif cfg.lora_rank or cfg.grow_layers:
        raise ValueError("--lora-rank and --grow-layers change an existing checkpoint: give it with --init")
    else:
        tok = build_tokenizer(tokenizer_corpus(cfg.seed, cfg.tokenizer_samples))
        write_side_files(tok, out)
        model = init_model(model_config(tok, size), cfg.seed).to(device)
    for p in model.parameters():  # loaded tensors are views of a file map: own them before training
        p.data = p.data.clone()
    model.train().requires_grad_(True)
    if cfg.freeze_vision:
        model.vision_model.requires_grad_(False)
    if cfg.train_only_new_layers:
        model.requires_grad_(False)
        layers = model.language_model.model.layers
        for layer in layers[len(layers) - cfg.grow_layers:]:
            layer.requires_grad_(True)
    lora = None
    if cfg.lora_rank:
        model.language_model.requires_grad_(False)
        lora = LoRA(model.language_model.model.layers, cfg.lora_rank, cfg.seed)
        if resuming:  # the checkpoint holds merged projections: put the base's back, then its adapters
            from safetensors.torch import load_file

            lora.restore_base(load_model(lora_base, device=device, dtype=torch.float32).language_model.model.layers)
            lora.load_state_dict(load_file(str(out / "lora.safetensors"), device=device))
    aid = None
    if cfg.vision_aid_weight > 0:
        torch.manual_seed(cfg.seed + 1)
        aid = VisionAid(model.cfg.text.hidden_size).to(device)
        if resuming and (out / "vision_aid.safetensors").exists():
            from safetensors.torch import load_file

            aid.load_state_dict(load_file(str(out / "vision_aid.safetensors"), device=str(device)))
    processor = Processor.from_pretrained(out, model.cfg)
    params = {p: n for n, p in model.named_parameters() if p.requires_grad}
    if lora is not None:
        params.update({p: f"lora.{n}" for n, p in lora.named_parameters()})
    model_params = list(params)
    if aid is not None:
        params.update({p: f"vision_aid.{n}" for n, p in aid.named_parameters()})
    embedding = model.language_model.model.embed_tokens.weight
    if cfg.freeze_coord_embeddings and embedding.requires_grad:
        # Adam moves every row by ~lr per step whatever its gradient's size: that noise buried the
        # small initial coordinate code within a few hundred steps, and with it the readout (the
        # embedding also leaves weight decay, which would shrink the frozen rows)
        t = model.cfg.tokens
        coord_rows = torch.zeros(embedding.shape[0], 1, dtype=torch.bool, device=embedding.device)
        coord_rows[t.coord_start:t.coord_end + 1] = True
        embedding.register_hook(lambda g: g.masked_fill(coord_rows, 0.0))
    def decays(p) -> bool:
        return p.dim() >= 2 and not (cfg.freeze_coord_embeddings and p is embedding)

    groups = [{"params": [p for p in model_params if decays(p)], "weight_decay": cfg.weight_decay},
              {"params": [p for p in model_params if not decays(p)], "weight_decay": 0.0}]
    if aid is not None:  # the read-outs start at zero and must lead the tower they teach: a faster rate
        groups.append({"params": list(aid.parameters()), "weight_decay": 0.0, "lr_scale": AID_LR_SCALE})
    opt = torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.95))
    if start and (out / "optimizer.safetensors").exists():
        load_optimizer(opt, params, out / "optimizer.safetensors")
    ema = None  # the moving average of model_params, in their order (cfg.ema_decay)
    if cfg.ema_decay > 0:
        if lora is not None:
            raise ValueError("--ema-decay averages the model's own weights; with --lora-rank they do not train")
        if resuming:  # saved in float32 like the weights: the resumed average is the uninterrupted one
            saved = dict(load_model(out / "ema", device=device, dtype=torch.float32).named_parameters())
            ema = [saved[params[p]].detach().clone() for p in model_params]
        else:
            ema = [p.detach().clone() for p in model_params]

    def save(step: int, elapsed: float) -> None:
        model.eval()
        if lora is None:
            save_pretrained(model, out)
        else:
            from safetensors.torch import save_file

            with lora.merged():
                save_pretrained(model, out)
            save_file({k: v.detach().cpu().contiguous() for k, v in lora.state_dict().items()}, str(out / "lora.safetensors"))
        if aid is not None:
            from safetensors.torch import save_file

            save_file({k: v.detach().cpu().contiguous() for k, v in aid.state_dict().items()}, str(out / "vision_aid.safetensors"))
        if ema is not None:  # the average goes through the model's own writer: swap it in, then back
            with torch.no_grad():
                live = [p.detach().clone() for p in model_params]
                for p, e in zip(model_params, ema):
                    p.copy_(e)
                save_pretrained(model, out / "ema", side_files_from=out)
                for p, w in zip(model_params, live):
                    p.copy_(w)
        save_optimizer(opt, params, out / "optimizer.safetensors")
        state_file.write_text(json.dumps({"step": step, "train_config": dataclasses.asdict(cfg),
                                          "model_size": dataclasses.asdict(size), "elapsed_s": prior_s + elapsed,
                                          "lora_base": lora_base}, indent=1))
        model.train()

    from tqdm import tqdm

    log_path = out / "train_log.jsonl"
    if log_path.exists():
        trim_log(log_path, start)
    log = open(log_path, "a")
    t0 = time.perf_counter()
    end = cfg.steps if stop_after is None else min(cfg.steps, start + stop_after)
    bar = tqdm(range(start, end), initial=start, total=cfg.steps, disable=not progress, desc="train")
    for step, batch in zip(bar, step_batches(cfg, processor, start, end, data_workers)):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg) * g.get("lr_scale", 1.0)
        ground = cfg.ground_weight if not cfg.ground_steps or step < cfg.ground_steps else 0.0
        loss, stats = joint_loss(model, batch, cfg.coord_sigma, ground_weight=ground, ground_layer=cfg.ground_layer,
                                 aid=aid, aid_weight=cfg.vision_aid_weight, mtp_weight=cfg.mtp_weight,
                                 null_smoothing=cfg.null_smoothing, instance_key_weight=cfg.instance_key_weight,
                                 instance_key_layer=cfg.instance_key_layer, follow_first=cfg.follow_first,
                                 colour_rival_weight=cfg.colour_rival_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(list(params), cfg.grad_clip)
        opt.step()
        if ema is not None:
            with torch.no_grad():
                for e, p in zip(ema, model_params):
                    e.lerp_(p, 1.0 - cfg.ema_decay)
        bar.set_postfix(loss=f"{stats['loss']:.3f}", mtp_acc=f"{stats['mtp_acc']:.2f}")
        if step % cfg.log_every == 0 or step == cfg.steps - 1:
            with torch.no_grad():  # does the model use the picture? (0 = it ignores where things are)
                blind = joint_loss(model, batch, cfg.coord_sigma, blind=True, ground_layer=cfg.ground_layer,
                                   mtp_weight=cfg.mtp_weight, null_smoothing=cfg.null_smoothing)[1]
                stats["image_gain"] = blind["loss"] - stats["loss"]
            log.write(json.dumps({"step": step, **stats, "grad_norm": float(grad_norm), "lr": opt.param_groups[0]["lr"],
                                  "elapsed_s": round(time.perf_counter() - t0, 1)}) + "\n")
            log.flush()
        if (step + 1) % cfg.save_every == 0 or step == end - 1:
            save(step + 1, time.perf_counter() - t0)
    log.close()
    if start >= end:
        save(start, 0.0)
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="locate_ros.training.train", description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--init", default=None, help="fine-tune this checkpoint instead of training from scratch")
    ap.add_argument("--size", default="small", choices=["small", "tiny"])
    ap.add_argument("--device", default=None)
    ap.add_argument("--stop-after", type=int, default=None, help="end this call after N steps (resume later)")
    ap.add_argument("--data-workers", type=int, default=0,
                    help="make the batches in N processes (for a GPU; the same batches as without)")
    d = TrainConfig()
    for f in dataclasses.fields(TrainConfig):
        if f.name in ("image_size", "dense_size", "families"):
            continue
        kind = type(f.default) if f.default is not None else str
        if kind is bool:
            ap.add_argument(f"--{f.name.replace('_', '-')}", action="store_true", default=f.default)
        else:
            ap.add_argument(f"--{f.name.replace('_', '-')}", type=kind, default=f.default)
    ap.add_argument("--image-size", type=int, nargs=2, default=d.image_size)
    ap.add_argument("--dense-size", type=int, nargs=2, default=None,
                    help="(min, max) side of the dense family's images (default: --image-size)")
    ap.add_argument("--families", nargs="*", default=None)
    args = ap.parse_args(argv)
    cfg = TrainConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
                         if f.name not in ("image_size", "dense_size", "families")},
                      image_size=tuple(args.image_size), families=tuple(args.families) if args.families else None,
                      dense_size=tuple(args.dense_size) if args.dense_size else None)
    size = ModelSize.tiny() if args.size == "tiny" else ModelSize()
    train(Path(args.out), cfg, size, Path(args.init) if args.init else None, args.device, stop_after=args.stop_after,
          data_workers=args.data_workers)


if __name__ == "__main__":
    main()
