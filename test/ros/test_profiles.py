"""Every parameter profile under config/ names only parameters the node declares, with their types."""
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.ros]
CONFIG = Path(__file__).resolve().parents[2] / "config"


def flatten(params: dict, prefix: str = "") -> dict:
    """Nested YAML groups are dotted ROS parameter names (hybrid: {ambiguous_prob} -> hybrid.ambiguous_prob)."""
    out = {}
    for k, v in params.items():
        out.update(flatten(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


@pytest.mark.parametrize("profile", sorted(p.name for p in CONFIG.glob("*.yaml")))
def test_profile_matches_the_node_parameters(profile):
    from locate_ros.processing import TASKS
    from locate_ros.ros.node import PARAMS

    doc = yaml.safe_load((CONFIG / profile).read_text())
    params = flatten(doc["/**"]["ros__parameters"])
    assert set(params) <= set(PARAMS), set(params) - set(PARAMS)
    for name, value in params.items():
        assert type(value) is type(PARAMS[name]), f"{profile}: {name}={value!r} is not a {type(PARAMS[name]).__name__}"
    assert params.get("mode", "hybrid") in ("slow", "fast", "hybrid")
    assert params.get("default_task", "detect") in TASKS


def test_there_are_cpu_desktop_and_jetson_profiles():
    assert {"cpu_demo.yaml", "desktop_gpu.yaml", "jetson_orin.yaml"} <= {p.name for p in CONFIG.glob("*.yaml")}
