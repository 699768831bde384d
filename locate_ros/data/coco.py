"""Samples as a COCO dataset: out_dir/images/{index:06d}.png and out_dir/annotations.json.

Beyond plain COCO:
  * each image records its `task`, `query`, `family` and `seed`, so the question can be rebuilt;
  * categories are the target labels (a category, an expression, a word), ids by sorted name;
  * a point target is an annotation with `point` [x, y] and no `bbox` or `area`, so box-based tools
    never mistake a point for a box;
  * negative targets (asked about, not in the image) are the image's `neg_category_ids`, as in LVIS.
Image ids are the sample indices; annotation ids count from 1 in sample, then answer order. The
file is written with sorted keys, so the same samples always give the same bytes.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Union

from PIL import Image

from .families import Sample


def export_coco(samples: Iterable[Sample], out_dir: Union[str, Path]) -> Path:
    """Write the images and annotations.json under out_dir; returns the path of annotations.json."""
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    samples = list(samples)
    indices = [s.index for s in samples]
    if len(set(indices)) != len(indices):
        raise ValueError("sample indices must be unique: they name the image files")
    labels = sorted({t.label for s in samples for t in s.targets})
    category_id = {label: i + 1 for i, label in enumerate(labels)}
    images, annotations = [], []
    for s in samples:
        file_name = f"{s.index:06d}.png"
        Image.fromarray(s.image).save(out / "images" / file_name)
        w, h = s.size
        images.append({
            "id": s.index, "file_name": file_name, "width": w, "height": h,
            "task": s.task, "query": s.query, "family": s.family, "seed": s.seed,
            "neg_category_ids": sorted({category_id[t.label] for t in s.targets if t.is_negative}),
        })
        for t in s.targets:
            base = {"image_id": s.index, "category_id": category_id[t.label], "iscrowd": 0}
            for x1, y1, x2, y2 in t.boxes:
                annotations.append({**base, "id": len(annotations) + 1, "bbox": [x1, y1, x2 - x1, y2 - y1],
                                    "area": (x2 - x1) * (y2 - y1)})
            for x, y in t.points:
                annotations.append({**base, "id": len(annotations) + 1, "point": [x, y]})
    data = {
        "info": {"description": "locate_ros synthetic grounding data"},
        "images": images,
        "annotations": annotations,
        "categories": [{"id": category_id[label], "name": label} for label in labels],
    }
    path = out / "annotations.json"
    path.write_text(json.dumps(data, sort_keys=True, indent=1) + "\n")
    return path
