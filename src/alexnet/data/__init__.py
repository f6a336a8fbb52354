"""Datasets for AlexNet: spec strings, the readers they name, and robust image decoding.

``open_dataset(spec)`` gives a `DataSource` whose splits yield ``(image, label)``; an image is a
uint8 C,H,W tensor (in-memory data), a PIL image in mode 'RGB' or 'L' (image files), or a
`BadImage` standing in for a file that cannot be decoded.
"""

from alexnet.data.datasets import DataSource
from alexnet.data.images import BadImage, load_image
from alexnet.data.registry import DATASETS, open_dataset, parse_spec

__all__ = ["DATASETS", "BadImage", "DataSource", "load_image", "open_dataset", "parse_spec"]
