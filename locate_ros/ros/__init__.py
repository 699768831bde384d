"""The ROS 2 edge of locate_ros (rclpy is imported only by the node module, not here)."""
