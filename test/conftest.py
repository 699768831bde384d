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
