import json
from pathlib import Path

import numpy as np
import pytest

from locate_ros.testing.tiny import build_tiny_checkpoint, golden_dir

GOLDEN = golden_dir()


def load_json(name: str):
    return json.loads((GOLDEN / name).read_text())


def load_npz(name: str) -> dict:
    return dict(np.load(GOLDEN / name))


@pytest.fixture(scope="session")
def golden() -> Path:
    return GOLDEN


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """The golden tiny checkpoint (release layout, fp32), rebuilt from its seed and sha-checked."""
    return build_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "ckpt")


def dense_rows(rows, fill: float, vocab: int):
    """Sparse golden rows {token_id: value} -> float32 [R, vocab]; unlisted entries are `fill`."""
    import torch

    x = torch.full((len(rows), vocab), fill, dtype=torch.float32)
    for r, row in enumerate(rows):
        for k, v in row.items():
            x[r, int(k)] = v
    return x


def pure_function_token_ids():
    """TokenIds of e_pure_functions.json (its keys are field names + "_token_id"; no image id there)."""
    from locate_ros.model.config import TokenIds

    g = load_json("e_pure_functions.json")["token_ids"]
    return TokenIds(image=-1, text_mask=g["default_mask_token_id"],
                    **{k[: -len("_token_id")]: v for k, v in g.items() if k != "default_mask_token_id"})


@pytest.fixture(scope="session")
def tiny_model(tiny_checkpoint):
    from locate_ros.model import load_model

    return load_model(tiny_checkpoint)


@pytest.fixture(scope="session")
def tiny_features(tiny_model):
    """Projected features of the golden 84x56 image (grid 4x6)."""
    from locate_ros.backends.torch_backend import TorchBackend

    return TorchBackend(tiny_model).encode_image(load_npz("a_vision.npz")["pixel_values"], [(4, 6)])
