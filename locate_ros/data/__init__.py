"""Synthetic grounding data: seeded procedural scenes, reference-format answers, COCO export."""
from .coco import export_coco
from .families import CURRICULUM_FAMILIES, FAMILIES, Instance, Sample, Target, generate_samples, make_sample
from .serialize import SerializedAnswer, answer_items, answer_text, quantize, serialize_answer

__all__ = [
    "CURRICULUM_FAMILIES", "FAMILIES", "Instance", "Sample", "SerializedAnswer", "Target", "answer_items", "answer_text",
    "export_coco", "generate_samples", "make_sample", "quantize", "serialize_answer",
]
