"""Reading images, scans and PDF pages with their metadata; writing outputs atomically.

Nothing else in the package opens a file. Reading: :func:`read_image` (array
and :class:`ImageInfo`), :func:`load_image`, :func:`load_page`,
:func:`load_pages`, :func:`count_pages`, :func:`read_mask`. Writing:
:func:`write_label_map`, :func:`write_image`, :func:`write_png`,
:func:`write_tiff`, :func:`write_array`, :func:`write_json`,
:func:`write_regions`, :func:`write_polygons`, :func:`write_probabilities`.
"""

from segment.io.arrays import apply_orientation, as_image
from segment.io.errors import ImageReadError, OutputError, SegmentError
from segment.io.export import region_polygons, region_table, write_polygons, write_probabilities, write_regions
from segment.io.info import GeoReference, ImageInfo
from segment.io.read import (
    DEFAULT_DPI,
    IMAGE_SUFFIXES,
    TIFF_SUFFIXES,
    count_pages,
    is_georeferenced,
    load_image,
    load_page,
    load_pages,
    read_image,
    read_mask,
    valid_pixels,
)
from segment.io.write import (
    LABEL_FORMATS,
    label_dtype,
    write_array,
    write_atomic,
    write_image,
    write_json,
    write_label_map,
    write_png,
    write_tiff,
)

__all__ = [
    "DEFAULT_DPI",
    "IMAGE_SUFFIXES",
    "LABEL_FORMATS",
    "TIFF_SUFFIXES",
    "GeoReference",
    "ImageInfo",
    "ImageReadError",
    "OutputError",
    "SegmentError",
    "apply_orientation",
    "as_image",
    "count_pages",
    "is_georeferenced",
    "label_dtype",
    "load_image",
    "load_page",
    "load_pages",
    "read_image",
    "read_mask",
    "region_polygons",
    "region_table",
    "valid_pixels",
    "write_array",
    "write_atomic",
    "write_image",
    "write_json",
    "write_label_map",
    "write_png",
    "write_polygons",
    "write_probabilities",
    "write_regions",
    "write_tiff",
]
