"""`pip install -e .` of locate_ros (the ROS-free core and the node's Python code).

colcon ignores this file: the build type comes from package.xml (ament_cmake, see CMakeLists.txt).
Runtime dependencies are pinned in requirements.txt (installed by `make setup`); they are not listed
in install_requires so that an apt-based ROS workspace keeps its system packages.
"""
from glob import glob

from setuptools import find_packages, setup

package_name = "locate_ros"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(include=["locate_ros", "locate_ros.*"]),
    package_data={"locate_ros": ["demo_model/*"]},  # the bundled demo checkpoint
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
        ("share/" + package_name + "/config", glob("config/*.yaml") + glob("config/*.xml")),
        ("share/" + package_name + "/launch", glob("launch/*.py")),
    ],
    zip_safe=False,
    maintainer="locate_ros developers",
    maintainer_email="locate-ros@example.com",
    description="NVIDIA LocateAnything language grounding for ROS 2 (ROS-free inference core + node)",
    license="Apache-2.0",
    python_requires=">=3.10",
    entry_points={"console_scripts": ["locate-ros = locate_ros.cli:main"]},
)
