"""The trainer end to end on a tiny model: the loss falls, runs resume bit-exactly, checkpoints load."""
import json

import numpy as np
import pytest

import torch
from safetensors.torch import load_file

from locate_ros.data import make_sample
from locate_ros.model import load_model
from locate_ros.training.config import ModelSize, TrainConfig
from locate_ros.training.tokenizer import NONE_WORD, build_tokenizer, token_ids_config
from locate_ros.training.train import train

from .base_run import CFG, fixed_batch_loss

def test_training_lowers_the_loss_on_a_fixed_batch(trained):
    run, init_loss = trained
    final = fixed_batch_loss(run)
    assert final < 0.7 * init_loss, (init_loss, final)
    log = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == CFG.steps - 1 and all(set(e) >= {"loss", "ntp_loss", "mtp_loss", "lr"} for e in log)
    assert json.loads((run / "trainer_state.json").read_text())["step"] == CFG.steps


def test_an_interrupted_run_resumes_bit_exactly(tmp_path):
    cfg = TrainConfig(**{**CFG.__dict__, "steps": 6})
    train(tmp_path / "straight", cfg, ModelSize.tiny(), progress=False)
    train(tmp_path / "resumed", cfg, ModelSize.tiny(), progress=False, stop_after=4)
    train(tmp_path / "resumed", cfg, ModelSize.tiny(), progress=False)
    # batches made in worker processes are the main process's batches: the same run, bit for bit
    train(tmp_path / "workers", cfg, ModelSize.tiny(), progress=False, data_workers=2)
    a = load_file(str(tmp_path / "straight" / "model.safetensors"))
    oa = load_file(str(tmp_path / "straight" / "optimizer.safetensors"))
    for run in ("resumed", "workers"):
        b = load_file(str(tmp_path / run / "model.safetensors"))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), run
        ob = load_file(str(tmp_path / run / "optimizer.safetensors"))
        assert oa.keys() == ob.keys() and all(torch.equal(oa[k], ob[k]) for k in oa), run


def test_a_run_killed_between_saves_resumes_with_each_step_logged_once(tmp_path):
    """A process killed after logging steps 4 and 5 but before saving them (its last save was at
    step 4), mid-way through writing one more line: the resumed run trains steps 4 and 5 again, and
    its log holds every step once, with the numbers of a run never stopped."""
    cfg = TrainConfig(**{**CFG.__dict__, "steps": 6, "log_every": 1})
    train(tmp_path / "straight", cfg, ModelSize.tiny(), progress=False)
    straight_log = (tmp_path / "straight" / "train_log.jsonl").read_text()
    train(tmp_path / "killed", cfg, ModelSize.tiny(), progress=False, stop_after=4)
    assert json.loads((tmp_path / "killed" / "trainer_state.json").read_text())["step"] == 4
    # what the killed process had written: the same lines (the same batches, bit for bit), then a torn one
    (tmp_path / "killed" / "train_log.jsonl").write_text(straight_log + '{"step": 6, "lo')
    train(tmp_path / "killed", cfg, ModelSize.tiny(), progress=False)

    def without_times(text):
        return [{k: v for k, v in json.loads(line).items() if k != "elapsed_s"} for line in text.splitlines()]
    resumed = without_times((tmp_path / "killed" / "train_log.jsonl").read_text())
    assert [e["step"] for e in resumed] == list(range(6))
    assert resumed == without_times(straight_log)


def test_the_weight_average_follows_the_live_weights_step_by_step_and_resumes_bit_exactly(tmp_path):
    """--ema-decay: OUT/ema holds, after each step, ema <- ema + (1 - d) (w - ema) from the first weights,
    as a loadable release checkpoint; a run stopped after every step ends with the uninterrupted average."""
    cfg = TrainConfig(**{**CFG.__dict__, "steps": 3, "save_every": 1, "ema_decay": 0.6})
    train(tmp_path / "straight", cfg, ModelSize.tiny(), progress=False)
    live = []  # the weights after 0, 1, 2 and 3 steps
    for _ in range(4):
        train(tmp_path / "stepped", cfg, ModelSize.tiny(), progress=False, stop_after=0 if not live else 1)
        live.append(load_file(str(tmp_path / "stepped" / "model.safetensors")))
    expected = {k: v.clone() for k, v in live[0].items()}
    for w in live[1:]:
        for k in expected:
            expected[k].lerp_(w[k], 1.0 - 0.6)
    for run in ("stepped", "straight"):
        ema = load_file(str(tmp_path / run / "ema" / "model.safetensors"))
        assert ema.keys() == expected.keys() and all(torch.equal(ema[k], expected[k]) for k in ema), run
    ema = load_file(str(tmp_path / "stepped" / "ema" / "model.safetensors"))
    moved = [k for k in ema if not torch.equal(live[0][k], live[3][k])]
    assert moved and all(not torch.equal(ema[k], live[3][k]) for k in moved)  # an average, not the last weights
    # keeping the average does not touch training: the live weights are a plain run's, bit for bit
    train(tmp_path / "plain", TrainConfig(**{**cfg.__dict__, "ema_decay": 0.0}), ModelSize.tiny(), progress=False)
    plain = load_file(str(tmp_path / "plain" / "model.safetensors"))
    assert not (tmp_path / "plain" / "ema").exists() and plain.keys() == ema.keys()
    for run_weights in (live[3], load_file(str(tmp_path / "straight" / "model.safetensors"))):
        assert all(torch.equal(plain[k], v) for k, v in run_weights.items())
    model = load_model(tmp_path / "stepped" / "ema")  # the release layout, tokenizer files beside it
    assert model.cfg.to_dict() == load_model(tmp_path / "stepped").cfg.to_dict()
    assert (tmp_path / "stepped" / "ema" / "tokenizer.json").read_bytes() == (tmp_path / "stepped" / "tokenizer.json").read_bytes()


def test_the_weight_average_is_refused_for_lora_runs(trained, tmp_path):
    cfg = TrainConfig(**{**CFG.__dict__, "steps": 2, "lora_rank": 2, "ema_decay": 0.9})
    with pytest.raises(ValueError, match="ema-decay"):
        train(tmp_path / "lora", cfg, ModelSize.tiny(), init=trained[0], progress=False)

def test_the_vision_aid_learns_colours_and_its_run_resumes_bit_exactly(tmp_path):
    """With vision_aid_weight the read-outs learn the colour of the object under each image token
    (well above the ~1/8 of a guess; they start at zero, i.e. always "red"), are saved beside the checkpoint (never in it), and an
    interrupted run resumes to the very same model, optimizer and read-outs."""
    cfg = TrainConfig(**{**CFG.__dict__, "steps": 80, "families": ("single",), "vision_aid_weight": 1.0,
                         "log_every": 1})
    train(tmp_path / "straight", cfg, ModelSize.tiny(), progress=False)
    log = [json.loads(line) for line in (tmp_path / "straight" / "train_log.jsonl").read_text().splitlines()]
    first, last = (np.mean([e.get("aid_color_acc", 0.0) for e in part]) for part in (log[:10], log[-10:]))
    assert last > 0.3 and last > 3 * first, (first, last)
    assert np.mean([e["aid_xy_err"] for e in log[-10:]]) < 0.7 * np.mean([e["aid_xy_err"] for e in log[:10]])
    train(tmp_path / "resumed", cfg, ModelSize.tiny(), progress=False, stop_after=50)
    train(tmp_path / "resumed", cfg, ModelSize.tiny(), progress=False)
    for name in ("model.safetensors", "optimizer.safetensors", "vision_aid.safetensors"):
        a, b = load_file(str(tmp_path / "straight" / name)), load_file(str(tmp_path / "resumed" / name))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    saved = load_file(str(tmp_path / "straight" / "model.safetensors"))
    assert not any("aid" in k for k in saved) and load_model(tmp_path / "straight") is not None


def test_the_checkpoint_is_the_release_layout_and_runs_in_the_locator(trained):
    from locate_ros import Locator

    run, _ = trained
    assert {"config.json", "model.safetensors", "tokenizer.json", "preprocessor_config.json"} <= {
        p.name for p in run.iterdir()}
    # the side files name this model's ids, not the 151k vocabulary's they were copied with
    text = json.loads((run / "config.json").read_text())["text_config"]
    gen = json.loads((run / "generation_config.json").read_text())
    assert (gen["bos_token_id"], gen["eos_token_id"]) == (text["bos_token_id"], text["eos_token_id"])
    loc = Locator.from_pretrained(run, mode="hybrid")
    sample = make_sample(5, 0, family="objects", size=(128, 160))
    res = loc.locate(sample.image, sample.query, task=sample.task, max_new_tokens=40)
    assert res.stats["tokens"] > 0
    # reloading gives the very tensors that were saved
    saved = load_file(str(run / "model.safetensors"))
    loaded = load_model(run).state_dict()
    assert all(torch.equal(saved[k], loaded[k]) for k in saved)


def test_tokenizer_has_the_release_special_tokens_and_encodes_anything():
    tok = build_tokenizer(["Locate all the instances that matches the following description: red circle."] * 5,
                          vocab_size=300)
    ids = token_ids_config(tok)
    assert ids["top"]["coord_end_token_id"] - ids["top"]["coord_start_token_id"] == 1000
    assert tok.encode(NONE_WORD, add_special_tokens=False).ids == [ids["top"]["none_token_id"]]
    box = tok.encode("<box><0><1000></box>", add_special_tokens=False).ids
    assert box == [ids["top"]["box_start_token_id"], ids["top"]["coord_start_token_id"],
                   ids["top"]["coord_end_token_id"], ids["top"]["box_end_token_id"]]
    text = "Ünïcode, digits 123 and a word never seen: zyxwvut!"
    assert tok.decode(tok.encode(text, add_special_tokens=False).ids) == text


def test_fine_tuning_with_a_frozen_vision_tower_changes_only_the_rest(trained, tmp_path):
    run, _ = trained
    cfg = TrainConfig(**{**CFG.__dict__, "steps": 3, "freeze_vision": True})
    train(tmp_path / "ft", cfg, init=run, progress=False)
    before, after = load_file(str(run / "model.safetensors")), load_file(str(tmp_path / "ft" / "model.safetensors"))
    vision = [k for k in before if k.startswith("vision_model.")]
    assert vision and all(torch.equal(before[k], after[k]) for k in vision)
    assert not all(torch.equal(before[k], after[k]) for k in before if k.startswith("language_model."))
    assert (tmp_path / "ft" / "tokenizer.json").read_bytes() == (run / "tokenizer.json").read_bytes()


def test_the_grounding_aid_teaches_attention_to_look_at_the_box(tmp_path):
    """With ground_weight the hooked head's attention mass on the asked-for box grows well above
    where it starts (about the box's share of the sequence) and above the same run without the aid;
    the coordinate rows of the embedding stay frozen when asked."""
    cfg = TrainConfig(**{**CFG.__dict__, "steps": 30, "families": ("single",), "ground_weight": 1.0,
                         "freeze_coord_embeddings": True, "log_every": 1})
    train(tmp_path / "g", cfg, ModelSize.tiny(), progress=False)
    log = [json.loads(line) for line in (tmp_path / "g" / "train_log.jsonl").read_text().splitlines()]
    start, end = np.mean([e["ground_mass"] for e in log[:3]]), np.mean([e["ground_mass"] for e in log[-3:]])
    train(tmp_path / "control", TrainConfig(**{**cfg.__dict__, "ground_weight": 0.0}), ModelSize.tiny(), progress=False)
    control = [json.loads(line)["ground_mass"] for line in (tmp_path / "control" / "train_log.jsonl").read_text().splitlines()]
    assert end > 3 * start and end > 2 * np.mean(control[-3:]), (start, end, control[-3:])
    before = load_file(str(tmp_path / "g" / "model.safetensors"))["language_model.model.embed_tokens.weight"]
    fresh = TrainConfig(**{**cfg.__dict__, "steps": 1})
    train(tmp_path / "h", fresh, ModelSize.tiny(), progress=False, stop_after=0)
    init = load_file(str(tmp_path / "h" / "model.safetensors"))["language_model.model.embed_tokens.weight"]
    tok = json.loads((tmp_path / "g" / "config.json").read_text())
    lo, hi = tok["coord_start_token_id"], tok["coord_end_token_id"]
    assert torch.equal(before[lo:hi + 1], init[lo:hi + 1])  # frozen coordinate rows ...
    assert not torch.equal(before[:lo], init[:lo])  # ... and only those


def test_the_training_stream_takes_its_negative_share_from_the_config():
    from locate_ros.training.train import batch_samples

    def negatives(share: float) -> int:
        cfg = TrainConfig(examples_per_step=40, families=("objects",), image_size=(128, 160), negative_share=share)
        return sum(t.is_negative for s in batch_samples(cfg, 0) for t in s.targets)

    assert negatives(0.0) == 0 < negatives(0.5)


def test_dense_scenes_are_drawn_at_their_own_size_when_asked_and_the_rest_as_before():
    from locate_ros.training.train import batch_samples

    base = TrainConfig(examples_per_step=24, families=("objects", "dense"), image_size=(128, 160), seed=3)
    same = batch_samples(base, 0)
    sized = batch_samples(TrainConfig(**{**base.__dict__, "dense_size": (300, 320)}), 0)
    assert {s.family for s in same} == {"objects", "dense"}
    for a, b in zip(same, sized):
        assert a.family == b.family
        sides = b.image.shape[:2]
        if b.family == "dense":
            assert all(300 <= v <= 320 for v in sides) and all(128 <= v <= 160 for v in a.image.shape[:2])
        else:  # untouched: the very same sample
            assert all(128 <= v <= 160 for v in sides) and a.image.tobytes() == b.image.tobytes()
            assert a.targets == b.targets


def test_the_dense_size_reaches_the_run_from_the_command_line_and_survives_a_resume(tmp_path):
    from locate_ros.training.train import main

    args = ["--out", str(tmp_path / "run"), "--size", "tiny", "--steps", "2", "--examples-per-step", "2",
            "--families", "objects", "dense", "--image-size", "128", "144", "--dense-size", "160", "176", "--tokenizer-samples", "60"]
    main(args + ["--stop-after", "1"])
    saved = json.loads((tmp_path / "run" / "trainer_state.json").read_text())["train_config"]
    assert saved["dense_size"] == [160, 176] and saved["image_size"] == [128, 144]
    main(args)  # resumes from step 1 with the saved sizes
    state = json.loads((tmp_path / "run" / "trainer_state.json").read_text())
    assert state["step"] == 2 and state["train_config"]["dense_size"] == [160, 176]


def test_a_grown_decoder_computes_what_the_checkpoint_did_and_then_trains_its_new_layers(trained, tmp_path):
    """grow_decoder appends layers whose residual branches start at zero: the same logits bit for bit;
    a --grow-layers run saves a checkpoint of the new depth whose new layers have moved off zero, and
    the grounding aid stays on the layer it is told (its attention statistic is logged)."""
    from locate_ros.processing import Processor
    from locate_ros.training.config import grow_decoder
    from locate_ros.training.objective import build_example, joint_loss, pack, target_logits
    from locate_ros.training.train import batch_samples

    run, _ = trained
    model = load_model(run)
    grown = grow_decoder(model, 2, seed=5)
    proc = Processor.from_pretrained(run, model.cfg)
    batch = pack([build_example(make_sample(777, i, family="objects", size=(128, 160)), proc) for i in range(2)])
    with torch.no_grad():
        assert torch.equal(target_logits(model, batch), target_logits(grown, batch))
    depth = model.cfg.text.num_hidden_layers
    assert len(grown.language_model.model.layers) == depth + 2

    cfg = TrainConfig(**{**CFG.__dict__, "steps": 3, "grow_layers": 2, "ground_weight": 1.0, "ground_layer": 1,
                         "log_every": 1})
    train(tmp_path / "grown", cfg, init=run, progress=False)
    text = json.loads((tmp_path / "grown" / "config.json").read_text())["text_config"]
    assert text["num_hidden_layers"] == depth + 2 and len(text["layer_types"]) == depth + 2
    after = load_file(str(tmp_path / "grown" / "model.safetensors"))
    new = [f"language_model.model.layers.{i}.{w}.weight" for i in (depth, depth + 1) for w in ("self_attn.o_proj", "mlp.down_proj")]
    assert all(after[k].abs().sum() > 0 for k in new)  # off zero: the new layers learn
    # the first step's logged attention statistic is the one of the layer asked for, not the middle one
    first = pack([build_example(s, proc) for s in batch_samples(cfg, 0)])
    start = grow_decoder(model, 2, seed=cfg.seed)  # the trainer's grown model before its first step
    with torch.no_grad():
        asked, middle = (joint_loss(start, first, ground_layer=g)[1]["ground_mass"] for g in (1, -1))
    logged = json.loads((tmp_path / "grown" / "train_log.jsonl").read_text().splitlines()[0])["ground_mass"]
    assert logged == pytest.approx(asked, rel=1e-4) and asked != pytest.approx(middle, rel=1e-2)
    assert load_model(tmp_path / "grown").cfg.text.num_hidden_layers == depth + 2


def test_training_only_the_new_layers_leaves_every_weight_the_checkpoint_had_as_it_was(trained, tmp_path):
    """--train-only-new-layers: after steps (and a resume) every tensor of the checkpoint is bit for bit
    what it was, and the appended layers have learned; without --grow-layers it is refused."""
    run, _ = trained
    before = load_file(str(run / "model.safetensors"))
    depth = load_model(run).cfg.text.num_hidden_layers
    cfg = TrainConfig(**{**CFG.__dict__, "steps": 4, "grow_layers": 2, "train_only_new_layers": True})
    train(tmp_path / "new_only", cfg, init=run, progress=False, stop_after=2)
    train(tmp_path / "new_only", cfg, init=run, progress=False)  # resumed: still only the new layers train
    after = load_file(str(tmp_path / "new_only" / "model.safetensors"))
    assert set(before) < set(after)
    assert all(torch.equal(before[k], after[k]) for k in before)
    new = [k for k in after if k not in before]
    assert new and all(k.startswith((f"language_model.model.layers.{depth}.", f"language_model.model.layers.{depth + 1}."))
                       for k in new)
    assert all(after[f"language_model.model.layers.{i}.{w}.weight"].abs().sum() > 0
               for i in (depth, depth + 1) for w in ("self_attn.o_proj", "mlp.down_proj"))
    with pytest.raises(ValueError, match="needs --grow-layers"):
        train(tmp_path / "refused", TrainConfig(**{**CFG.__dict__, "steps": 1, "train_only_new_layers": True}),
              init=run, progress=False)
    assert not (tmp_path / "refused").exists()  # refused before anything is written


def test_the_block_row_options_reach_the_loss_from_the_command_line(tmp_path):
    """--instance-key-weight/--instance-key-layer and --follow-first are saved with the run and change
    what is minimised: the same data and start give the same first step on the stream rows, which
    neither option touches, and a different second step."""
    from locate_ros.training.train import main

    args = ["--size", "tiny", "--steps", "2", "--examples-per-step", "2", "--families", "objects",
            "--image-size", "128", "144", "--tokenizer-samples", "60", "--log-every", "1"]
    main(args + ["--out", str(tmp_path / "aided"), "--instance-key-weight", "0.5", "--instance-key-layer", "0",
                 "--follow-first"])
    main(args + ["--out", str(tmp_path / "plain")])
    logs = {name: [json.loads(line) for line in open(tmp_path / name / "train_log.jsonl")] for name in ("aided", "plain")}
    saved = json.loads((tmp_path / "aided" / "trainer_state.json").read_text())["train_config"]
    assert saved["instance_key_weight"] == 0.5 and saved["instance_key_layer"] == 0 and saved["follow_first"] is True
    assert len(logs["aided"]) == 2
    assert all(d["instance_key_err_bins"] >= 0 and 0 <= d["followed_share"] <= 1 for d in logs["aided"])
    assert not any("instance_key_err_bins" in d or "followed_share" in d for d in logs["plain"])
    assert logs["aided"][0]["ntp_loss"] == logs["plain"][0]["ntp_loss"]
    assert logs["aided"][1]["ntp_loss"] != logs["plain"][1]["ntp_loss"]


def test_the_colour_rival_weight_reaches_the_loss_from_the_command_line(tmp_path):
    """--colour-rival-weight (and --colour-rival-anywhere) are saved with the run and weigh the loss it
    minimises: on the same first batch the unweighted per-kind losses are equal and the minimised loss
    is not."""
    from locate_ros.training.train import main

    args = ["--size", "tiny", "--steps", "2", "--examples-per-step", "2", "--families", "same_shape",
            "--image-size", "128", "144", "--tokenizer-samples", "60", "--log-every", "1", "--negative-share", "0"]
    main(args + ["--out", str(tmp_path / "weighted"), "--colour-rival-weight", "4", "--colour-rival-anywhere"])
    main(args + ["--out", str(tmp_path / "plain")])
    logs = {name: [json.loads(line) for line in open(tmp_path / name / "train_log.jsonl")] for name in ("weighted", "plain")}
    saved = json.loads((tmp_path / "weighted" / "trainer_state.json").read_text())["train_config"]
    assert saved["colour_rival_weight"] == 4.0 and saved["colour_rival_anywhere"] is True
    first = {name: log[0] for name, log in logs.items()}
    assert all(d["colour_rival_err_bins"] >= 0 for d in first.values())  # the batch holds such rows
    assert first["weighted"]["ntp_loss"] == first["plain"]["ntp_loss"]
    assert first["weighted"]["mtp_loss"] == first["plain"]["mtp_loss"]
    assert first["weighted"]["loss"] != first["plain"]["loss"]


def test_x1_blocks_reach_the_batches_from_the_command_line(tmp_path):
    """--x1-blocks is saved with the run and adds the x1-anchored blocks to every batch it trains on:
    the same first batch has the same stream rows (equal next-token loss) and more block rows."""
    from locate_ros.training.train import main

    args = ["--size", "tiny", "--steps", "1", "--examples-per-step", "2", "--families", "objects",
            "--image-size", "128", "144", "--tokenizer-samples", "60", "--log-every", "1", "--negative-share", "0"]
    main(args + ["--out", str(tmp_path / "anchored"), "--x1-blocks"])
    main(args + ["--out", str(tmp_path / "plain")])
    first = {name: json.loads(open(tmp_path / name / "train_log.jsonl").readline()) for name in ("anchored", "plain")}
    saved = json.loads((tmp_path / "anchored" / "trainer_state.json").read_text())["train_config"]
    assert saved["x1_blocks"] is True
    assert first["anchored"]["ntp_loss"] == first["plain"]["ntp_loss"]
    assert first["anchored"]["tokens"] > first["plain"]["tokens"]
    assert first["anchored"]["mtp_loss"] != first["plain"]["mtp_loss"]
