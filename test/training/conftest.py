import pytest

from locate_ros.training.config import ModelSize
from locate_ros.training.train import train

from .base_run import CFG, fixed_batch_loss


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """Step 0 (the initialisation) and step 40 of one run (a base for the fine-tuning tests too)."""
    d = tmp_path_factory.mktemp("run")
    train(d / "run", CFG, ModelSize.tiny(), progress=False, stop_after=0)
    init_loss = fixed_batch_loss(d / "run")
    train(d / "run", CFG, ModelSize.tiny(), progress=False)
    return d / "run", init_loss
