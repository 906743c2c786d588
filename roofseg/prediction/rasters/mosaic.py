"""A GDAL VRT mosaic of prediction rasters, so a GIS opens a whole area as one layer.

GDAL's Python bindings are not a dependency, so the VRT is written here rather than by
``gdalbuildvrt``. It follows that tool's rules: one CRS, north-up grids, the average pixel
size, later rasters drawn over earlier ones, and each raster's mask band honoured, so a
scene's nodata never hides the scene under it.
"""

from __future__ import annotations

import os
import warnings
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import rasterio
from affine import Affine
from rasterio.crs import CRS

from roofseg.atomic import temp_path
from roofseg.contracts.tags import BANDS, roofseg_tags

_VRT_TYPES = {"uint8": "Byte", "float32": "Float32"}


@dataclass(frozen=True)
class Source:
    """What the mosaic needs to know of one raster: its file, grid, data type, bands and tags."""

    path: str | os.PathLike
    width: int
    height: int
    transform: Affine
    crs: CRS | None
    dtype: str
    count: int
    tags: dict

    @property
    def crs_wkt(self) -> str:
        return self.crs.to_wkt() if self.crs else ""


def read_source(path: str | os.PathLike) -> Source:
    with rasterio.open(path) as ds:
        return Source(path, ds.width, ds.height, ds.transform, ds.crs, ds.dtypes[0], ds.count, ds.tags())


def _band_tags(sources: Sequence[Source], count: int) -> dict:
    """The sources' roofseg tags, with the band names cut to the ``count`` bands the mosaic has."""

    tags = roofseg_tags(sources[0].tags)
    if BANDS in tags:
        tags[BANDS] = ",".join(tags[BANDS].split(",")[:count])
    return tags


def mosaic_xml(sources: Sequence[Source], vrt_folder: str | os.PathLike) -> str:
    """The VRT document of ``sources`` (one CRS, one data type, north-up), paths relative to ``vrt_folder``."""
    res_x = sum(s.transform.a for s in sources) / len(sources)
    res_y = sum(-s.transform.e for s in sources) / len(sources)
    left = min(s.transform.c for s in sources)
    top = max(s.transform.f for s in sources)
    right = max(s.transform.c + s.width * s.transform.a for s in sources)
    bottom = min(s.transform.f + s.height * s.transform.e for s in sources)
    width, height = round((right - left) / res_x), round((top - bottom) / res_y)

    root = ET.Element("VRTDataset", rasterXSize=str(width), rasterYSize=str(height))
    if sources[0].crs_wkt:
        ET.SubElement(root, "SRS", dataAxisToSRSAxisMapping="1,2").text = sources[0].crs_wkt
    ET.SubElement(root, "GeoTransform").text = ", ".join(repr(v) for v in (left, res_x, 0.0, top, 0.0, -res_y))
    # every band the sources share (roof, contact), named as in a single prediction raster
    count = min(s.count for s in sources)
    metadata = ET.SubElement(root, "Metadata")
    for key, value in _band_tags(sources, count).items():
        ET.SubElement(metadata, "MDI", key=key).text = value
    bands = [
        ET.SubElement(root, "VRTRasterBand", dataType=_VRT_TYPES.get(sources[0].dtype, "Float32"), band=str(b))
        for b in range(1, count + 1)
    ]
    mask = ET.SubElement(ET.SubElement(root, "MaskBand"), "VRTRasterBand", dataType="Byte")
    for s in sources:
        dst = dict(
            xOff=repr((s.transform.c - left) / res_x),
            yOff=repr((top - s.transform.f) / res_y),
            xSize=repr(s.width * s.transform.a / res_x),
            ySize=repr(s.height * -s.transform.e / res_y),
        )
        # The data only where the raster's own mask says valid; the mask only where it is set
        # (0 taken as nodata), so a later raster's nodata never erases an earlier raster.
        layers = [(band, str(b), ("UseMaskBand", "true")) for b, band in enumerate(bands, 1)]
        for parent, source_band, extra in layers + [(mask, "mask,1", ("NODATA", "0"))]:
            src = ET.SubElement(parent, "ComplexSource")
            name = ET.SubElement(src, "SourceFilename", relativeToVRT="1")
            name.text = os.path.relpath(s.path, vrt_folder)
            ET.SubElement(src, "SourceBand").text = source_band
            ET.SubElement(src, "SrcRect", xOff="0", yOff="0", xSize=str(s.width), ySize=str(s.height))
            ET.SubElement(src, "DstRect", **dst)
            ET.SubElement(src, extra[0]).text = extra[1]
    ET.indent(root)
    return ET.tostring(root, encoding="unicode")


def write_mosaics(paths: Sequence[str | os.PathLike], out_stem: Path, relative_to: str | None = None) -> list[Path]:
    """Write ``<out_stem>.vrt`` over ``paths`` (one VRT per CRS: ``<out_stem>_<crs>.vrt`` when
    they differ); return the VRTs written. Rotated grids cannot join a VRT and are left out with a
    warning. Source paths are written relative to ``relative_to`` (default: the VRT's folder),
    the folder the VRT will be read from."""
    groups: list[list[Source]] = []  # by CRS equality: one CRS may be written as EPSG code, WKT or PROJ string
    for path in paths:
        s = read_source(path)
        if s.transform.b or s.transform.d or s.transform.e >= 0:
            warnings.warn(f"{path}: not a north-up grid; left out of the mosaic", stacklevel=2)
            continue
        for group in groups:
            if same_crs(group[0].crs, s.crs):
                group.append(s)
                break
        else:
            groups.append([s])
    names = _group_names([g[0].crs for g in groups])
    written = []
    for name, sources in zip(names, groups):
        out = out_stem.with_name(out_stem.name + name + ".vrt")
        tmp = temp_path(out, keep_suffix=True)
        try:
            tmp.write_text(mosaic_xml(sources, relative_to or out.parent))
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
        written.append(out)
    return written


def same_crs(a: CRS | None, b: CRS | None) -> bool:
    """One CRS, however written: the same EPSG code where both have one, else equal definitions."""
    if a is None or b is None:
        return a is b
    epsg_a, epsg_b = a.to_epsg(), b.to_epsg()
    if epsg_a and epsg_b:
        return epsg_a == epsg_b
    return a == b


def _group_names(crss: list) -> list[str]:
    """A distinct file-name ending per CRS group: '' for one group, else '_epsgNNNN' (or '_crsN',
    '_nocrs') with '-2', '-3', … where two groups would share a name."""
    if len(crss) == 1:
        return [""]
    names, seen = [], Counter()
    for n, crs in enumerate(crss):
        epsg = crs.to_epsg() if crs else None
        name = f"_epsg{epsg}" if epsg else (f"_crs{n}" if crs else "_nocrs")
        seen[name] += 1
        names.append(name if seen[name] == 1 else f"{name}-{seen[name]}")
    return names
