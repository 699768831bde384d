"""locate.launch.py plus an image source (locate_ros' image_source) feeding the node's `image` input.

    ros2 launch locate_ros locate_with_image_source.launch.py images:=/data/frames rate_hz:=5.0

Arguments: everything locate.launch.py takes (model_path, params_file, namespace, autostart), plus
images (an image file or directory; '' = the bundled test image), rate_hz and frame_id. The source
publishes on <namespace>/image, which is where the node listens. On the pip route (no `launch`):
`python -m locate_ros.ros.image_source --ros-args -p path:=DIR` beside the node command in
locate.launch.py's docstring.
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description():
    share = get_package_share_directory("locate_ros")
    args = [
        DeclareLaunchArgument("images", default_value="", description="image file or directory ('' = bundled)"),
        DeclareLaunchArgument("rate_hz", default_value="2.0"),
        DeclareLaunchArgument("frame_id", default_value="camera_optical"),
        DeclareLaunchArgument("namespace", default_value=""),
    ]
    locate = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(os.path.join(share, "launch", "locate.launch.py")),
        launch_arguments={"namespace": LaunchConfiguration("namespace"), "image": "image"}.items(),
    )
    source = Node(
        package="locate_ros", executable="image_source", name="image_source", namespace=LaunchConfiguration("namespace"),
        parameters=[{"path": LaunchConfiguration("images"), "rate_hz": LaunchConfiguration("rate_hz"),
                     "frame_id": LaunchConfiguration("frame_id")}],
        output="screen",
    )
    return LaunchDescription(args + [locate, source])
