"""Labelled hole datasets: one in-memory form, readers (COCO, YOLO-seg, mask PNG folders), a COCO writer
and a checker."""

from holevision.export.datasets.check import CheckReport, check_dataset
from holevision.export.datasets.coco import read_coco, write_coco
from holevision.export.datasets.load import detect_format, load_dataset
from holevision.export.datasets.maskfolder import read_mask_folder
from holevision.export.datasets.model import Dataset, DatasetError, Instance, Sample, polygons_from_mask
from holevision.export.datasets.yolo import read_yolo_seg

__all__ = ["CheckReport", "Dataset", "DatasetError", "Instance", "Sample", "check_dataset", "detect_format",
           "load_dataset", "polygons_from_mask", "read_coco", "read_mask_folder", "read_yolo_seg", "write_coco"]
