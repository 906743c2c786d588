"""Imagery from XYZ/TMS tile servers (OpenAerialMap, a team's own orthophotos): ``xyz:URL`` scenes.

GDAL's WMS driver fetches, caches and stitches the tiles of a web-mercator tile pyramid; roofseg
writes its description (the whole pyramid at one zoom) and a VRT clipped to the box asked, so
the rest of roofseg reads the box window by window like any scene: EPSG:3857 on the tile grid,
its ground pixel size following from the zoom and the latitude. URL templates take ``{z}``,
``{x}``, ``{y}``, ``{-y}`` (TMS row order) or ``{q}`` (a Bing quadkey); a tile that cannot be
fetched is named in one line.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from pyproj import Transformer

from roofseg.errors import RoofsegError

PREFIX = "xyz:"
HALF_WORLD = 20037508.342789244  # EPSG:3857's extent, metres
TILE = 256
TEMPLATE_TAG = "ROOFSEG_XYZ_TEMPLATE"
ZOOM_TAG = "ROOFSEG_XYZ_ZOOM"


def is_xyz(entry: str) -> bool:
    return str(entry).lower().startswith(PREFIX)


@dataclass(frozen=True)
class Box:
    """A box in longitude and latitude (WGS84 degrees)."""

    west: float
    south: float
    east: float
    north: float


def parse_bbox(text: str) -> Box:
    """``--bbox W,S,E,N`` in degrees."""
    try:
        w, s, e, n = (float(v) for v in text.split(","))
    except ValueError:
        raise RoofsegError(None, f"--bbox takes W,S,E,N in degrees, got {text!r}") from None
    if not (-180 <= w < e <= 180 and -85.06 <= s < n <= 85.06):
        raise RoofsegError(
            None, f"--bbox {text}: west < east within ±180 and south < north within ±85.06 (web mercator)"
        )
    return Box(w, s, e, n)


def resolution(zoom: int) -> float:
    """Metres of EPSG:3857 per pixel at ``zoom`` (256 px tiles)."""
    return 2 * HALF_WORLD / (TILE * 2**zoom)


def pixel_window(box: Box, zoom: int) -> tuple[int, int, int, int]:
    """(col, row, width, height) of the box in the pyramid's pixel grid at ``zoom``: whole pixels around it."""

    to_mercator = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)
    (x0, x1), (y0, y1) = zip(
        *(to_mercator.transform(lon, lat) for lon, lat in ((box.west, box.south), (box.east, box.north)))
    )
    res = resolution(zoom)
    col0, col1 = math.floor((x0 + HALF_WORLD) / res), math.ceil((x1 + HALF_WORLD) / res)
    row0, row1 = math.floor((HALF_WORLD - y1) / res), math.ceil((HALF_WORLD - y0) / res)
    return col0, row0, col1 - col0, row1 - row0


def _gdal_template(template: str) -> tuple[str, str, str]:
    """(GDAL WMS mini-driver, its URL template, row origin) for an XYZ URL template."""
    if "{q}" in template:
        return "VirtualEarth", template.replace("{q}", "${quadkey}"), "top"
    if "{-y}" in template:  # TMS: rows counted from the bottom
        return "TMS", template.replace("{z}", "${z}").replace("{x}", "${x}").replace("{-y}", "${y}"), "bottom"
    if not all(k in template for k in ("{z}", "{x}", "{y}")):
        raise RoofsegError(template, "an XYZ URL template needs {z}, {x} and {y} (or {-y}, or {q})")
    return "TMS", template.replace("{z}", "${z}").replace("{x}", "${x}").replace("{y}", "${y}"), "top"


def wms_xml(template: str, zoom: int, cache: Path) -> str:
    """GDAL's WMS description of the whole pyramid at ``zoom`` (3 bands, tiles cached in ``cache``)."""
    service, url, origin = _gdal_template(template)
    root = ET.Element("GDAL_WMS")
    svc = ET.SubElement(root, "Service", name=service)
    ET.SubElement(svc, "ServerUrl").text = url
    window = ET.SubElement(root, "DataWindow")
    for tag, value in (
        ("UpperLeftX", -HALF_WORLD),
        ("UpperLeftY", HALF_WORLD),
        ("LowerRightX", HALF_WORLD),
        ("LowerRightY", -HALF_WORLD),
        ("TileLevel", zoom),
        ("TileCountX", 1),
        ("TileCountY", 1),
        ("YOrigin", origin),
    ):
        ET.SubElement(window, tag).text = repr(value) if isinstance(value, float) else str(value)
    for tag, value in (
        ("Projection", "EPSG:3857"),
        ("BlockSizeX", TILE),
        ("BlockSizeY", TILE),
        ("BandsCount", 3),
        ("MaxConnections", 4),
        ("Timeout", 60),
    ):
        ET.SubElement(root, tag).text = str(value)
    ET.SubElement(ET.SubElement(root, "Cache"), "Path").text = str(cache)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode")


def clip_vrt(wms: Path, template: str, zoom: int, window: tuple[int, int, int, int]) -> str:
    """A VRT of ``window`` of the WMS pyramid: the box as one raster on the tile grid."""
    col, row, width, height = window
    res = resolution(zoom)
    root = ET.Element("VRTDataset", rasterXSize=str(width), rasterYSize=str(height))
    ET.SubElement(root, "SRS").text = "EPSG:3857"
    left, top = -HALF_WORLD + col * res, HALF_WORLD - row * res
    ET.SubElement(root, "GeoTransform").text = ", ".join(repr(v) for v in (left, res, 0.0, top, 0.0, -res))
    metadata = ET.SubElement(root, "Metadata")
    ET.SubElement(metadata, "MDI", key=TEMPLATE_TAG).text = template
    ET.SubElement(metadata, "MDI", key=ZOOM_TAG).text = str(zoom)
    for band in (1, 2, 3):
        vb = ET.SubElement(root, "VRTRasterBand", dataType="Byte", band=str(band))
        ET.SubElement(vb, "ColorInterp").text = ("Red", "Green", "Blue")[band - 1]
        src = ET.SubElement(vb, "SimpleSource")
        ET.SubElement(src, "SourceFilename", relativeToVRT="1").text = wms.name
        ET.SubElement(src, "SourceBand").text = str(band)
        ET.SubElement(src, "SrcRect", xOff=str(col), yOff=str(row), xSize=str(width), ySize=str(height))
        ET.SubElement(src, "DstRect", xOff="0", yOff="0", xSize=str(width), ySize=str(height))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode")


def xyz_scene(entry: str, bbox: str | None, zoom: int | None, folder: str | os.PathLike | None = None) -> str:
    """The VRT that reads ``xyz:URL`` over ``bbox`` at ``zoom``, written (with its WMS description
    and tile cache) in ``folder`` (default: roofseg's cache under the temporary folder). Its name
    says the zoom: ``xyz-z<zoom>.vrt``, so the scene's id is ``xyz-z<zoom>``."""
    template = entry[len(PREFIX) :]
    if not bbox or zoom is None:
        raise RoofsegError(entry, "an XYZ tile layer needs --bbox W,S,E,N and --zoom")
    box = parse_bbox(bbox)
    if not 0 <= zoom <= 24:
        raise RoofsegError(entry, f"--zoom {zoom}: tile pyramids go from 0 to 24")
    window = pixel_window(box, zoom)
    if window[2] * window[3] > 100_000**2:
        raise RoofsegError(entry, f"--bbox {bbox} at zoom {zoom} is {window[2]}x{window[3]} px: give a smaller box")
    key = hashlib.sha256(f"{template}|{zoom}|{box}".encode()).hexdigest()[:16]
    base = Path(folder) if folder else Path(tempfile.gettempdir()) / "roofseg-xyz"
    work = base / key
    work.mkdir(parents=True, exist_ok=True)
    wms = work / f"pyramid-z{zoom}.xml"
    wms.write_text(wms_xml(template, zoom, work / "tiles"))
    vrt = work / f"xyz-z{zoom}.vrt"
    vrt.write_text(clip_vrt(wms, template, zoom, window))
    return str(vrt)


_BLOCK = re.compile(r"Unable to download block (\d+), (\d+)")
_STATUS = re.compile(r"HTTP status code: (\d+)")


def tile_failure(exc: BaseException, tags: dict) -> str | None:
    """'tile URL: HTTP 404' for a failed tile fetch of an XYZ scene (its URL rebuilt from the
    template in the VRT's tags and the block GDAL names), or None for any other failure."""
    template, zoom = tags.get(TEMPLATE_TAG), tags.get(ZOOM_TAG)
    if not template:
        return None
    text, cause = "", exc
    while cause is not None:
        text += " " + str(cause)
        cause = cause.__cause__ or cause.__context__
    block = _BLOCK.search(text)
    if not block:
        return None
    x, y, z = int(block.group(1)), int(block.group(2)), int(zoom)
    url = template.replace("{z}", str(z)).replace("{x}", str(x)).replace("{y}", str(y))
    url = url.replace("{-y}", str(2**z - 1 - y)).replace("{q}", _quadkey(x, y, z))
    status = _STATUS.search(text)
    return f"tile {url} could not be fetched ({'HTTP ' + status.group(1) if status else 'no answer'})"


def _quadkey(x: int, y: int, z: int) -> str:
    return "".join(str(((x >> (z - i)) & 1) + 2 * ((y >> (z - i)) & 1)) for i in range(1, z + 1))
