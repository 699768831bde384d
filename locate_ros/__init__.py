"""locate_ros: NVIDIA LocateAnything grounding for robots. The core is ROS-free: `from locate_ros import Locator`."""

__version__ = "0.1.0"

# The ROS build (CMakeLists.txt) installs this code next to the generated `locate_ros.msg` in the
# colcon install space. Merge every `locate_ros` directory on sys.path into this package so that a
# source checkout that comes first (the current directory, `pip install -e .`) does not hide
# `locate_ros.msg`. Without ROS this finds only this directory: a no-op.
__path__ = __import__("pkgutil").extend_path(__path__, __name__)


def __getattr__(name):
    # lazy: `import locate_ros` stays cheap (no torch) for tools that only need a submodule
    if name == "Locator":
        from .locator import Locator

        return Locator
    if name in ("Detection", "LocateResult"):
        from . import results

        return getattr(results, name)
    raise AttributeError(name)


__all__ = ["Locator", "Detection", "LocateResult", "__version__"]
