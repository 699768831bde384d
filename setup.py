"""locate_ros: an ament_python package (colcon) that is also pip-installable.

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
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
        ("share/" + package_name + "/config", glob("config/*.yaml")),
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
