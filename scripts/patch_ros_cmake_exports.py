#!/usr/bin/env python3
"""Rewrite the wheel builder's Python/numpy include dirs in the ros-* wheels' exported CMake files.

The ros-jazzy-* wheels ship share/<pkg>/cmake/*Export*.cmake files naming
/opt/python/cpXY-cpXY/include/pythonX.Y and that interpreter's numpy include dir. Building any
interface package against them then fails. Run after every `pip install` into the venv; idempotent.
"""
import glob
import os
import re
import sys
import sysconfig

import numpy

prefix = sys.argv[1] if len(sys.argv) > 1 else sys.prefix
py_inc = sysconfig.get_paths()["include"]
np_inc = numpy.get_include()
pat_np = re.compile(r"/opt/python/[^;\"]*?/site-packages/numpy/[^;\"]*include")
pat_py = re.compile(r"/opt/python/[^;\"/]+/include/python3\.\d+")
changed = 0
for path in glob.glob(os.path.join(prefix, "share", "*", "cmake", "*Export*.cmake")):
    with open(path) as f:
        text = f.read()
    if "/opt/python/" not in text:
        continue
    new = pat_py.sub(py_inc, pat_np.sub(np_inc, text))
    if new != text:
        with open(path, "w") as f:
            f.write(new)
        changed += 1
left = [p for p in glob.glob(os.path.join(prefix, "share", "*", "cmake", "*.cmake")) if "/opt/python/" in open(p).read()]
print(f"patch_ros_cmake_exports: {changed} file(s) rewritten (python include {py_inc}, numpy include {np_inc}); {len(left)} still name /opt/python")
sys.exit(1 if left else 0)
