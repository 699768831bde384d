from .checkpoint import CheckpointError, load_model, save_pretrained
from .config import (
           ConfigError,
           LocateAnythingConfig,
           TextConfig,
           TokenIds,
           VisionConfig,
)
from .locate_anything import LocateAnything

__all__ = ["CheckpointError", "ConfigError", "LocateAnything", "LocateAnythingConfig", "TextConfig", "TokenIds",
           "VisionConfig", "load_model", "save_pretrained"]
