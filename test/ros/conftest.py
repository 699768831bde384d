import os
import platform

import pytest


def pytest_configure(config):
    config.addinivalue_line("markers", "ros: the test needs rclpy and DDS (it runs on loopback only)")


def pytest_collection_modifyitems(config, items):
    # The pip route's ROS 2 wheels exist for x86_64 Linux only; elsewhere (an aarch64 laptop without
    # apt ROS) `ros` tests cannot run. On x86_64 a missing ROS environment is a failure, not a skip.
    try:
        import rclpy  # noqa: F401
        return
    except ImportError:
        if platform.machine() == "x86_64":
            return
    skip = pytest.mark.skip(reason=f"no rclpy on {platform.machine()} (ROS 2 wheels are x86_64-only)")
    for item in items:
        if item.get_closest_marker("ros"):
            item.add_marker(skip)


@pytest.fixture
def loopback_only():
    """Every ROS process of the tests stays on loopback (Fast DDS multicasts off-machine by default)."""
    assert os.environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE") == "LOCALHOST", \
        "run ROS tests through `make test` (it sets ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST)"
    assert os.environ.get("ROS_DOMAIN_ID"), "a random ROS_DOMAIN_ID keeps concurrent runs apart"


@pytest.fixture(scope="module")
def client():
    """This test process as a ROS client: one rclpy context and node per test module."""
    import rclpy

    rclpy.init()
    node = rclpy.create_node("locate_test_client")
    yield node
    node.destroy_node()
    rclpy.shutdown()
