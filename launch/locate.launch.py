"""Start locate_node (a lifecycle node) with a parameters file, and configure + activate it.

    ros2 launch locate_ros locate.launch.py model_path:=/path/to/LocateAnything-3B \
        params_file:=$(ros2 pkg prefix locate_ros)/share/locate_ros/config/desktop_gpu.yaml \
        namespace:=front image:=/front/camera/image_raw

Arguments: model_path, params_file (default: the CPU profile), namespace, image (remap of the
node's `image` input), autostart (configure and activate on start, default true).
On the pip route (no `launch` there) the same node runs as
`python -m locate_ros.ros.node --ros-args --params-file FILE -p model_path:=DIR -r image:=TOPIC`.
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, RegisterEventHandler
from launch.conditions import IfCondition
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from lifecycle_msgs.msg import Transition


def generate_launch_description():
    share = get_package_share_directory("locate_ros")
    args = [
        DeclareLaunchArgument("model_path", default_value="", description="checkpoint directory ('' = tiny demo)"),
        DeclareLaunchArgument("params_file", default_value=os.path.join(share, "config", "cpu_demo.yaml")),
        DeclareLaunchArgument("namespace", default_value=""),
        DeclareLaunchArgument("image", default_value="image", description="camera topic to remap `image` to"),
        DeclareLaunchArgument("autostart", default_value="true"),
    ]
    node = LifecycleNode(
        package="locate_ros", executable="locate_node", name="locate_node", namespace=LaunchConfiguration("namespace"),
        parameters=[LaunchConfiguration("params_file"), {"model_path": LaunchConfiguration("model_path")}],
        remappings=[("image", LaunchConfiguration("image"))], output="screen",
    )
    autostart = IfCondition(LaunchConfiguration("autostart"))
    configure = EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(node),
                                            transition_id=Transition.TRANSITION_CONFIGURE), condition=autostart)
    activate = RegisterEventHandler(OnStateTransition(
        target_lifecycle_node=node, goal_state="inactive",
        entities=[EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(node),
                                              transition_id=Transition.TRANSITION_ACTIVATE))]), condition=autostart)
    return LaunchDescription(args + [node, activate, configure])
