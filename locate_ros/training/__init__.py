"""LocateAnything's training side at small scale: tokenizer, model configs, the joint NTP+MTP objective
and a resumable trainer (ROS-free, CPU or GPU)."""
