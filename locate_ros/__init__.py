"""locate_ros: NVIDIA LocateAnything grounding for robots. The core is ROS-free: `from locate_ros import Locator`."""

__version__ = "0.1.0"


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
