"""QGIS layer styles (``NAME.qml`` beside ``NAME.tif``): QGIS loads them with the raster, so a
prediction opens readable over the imagery instead of as a grey square.

A probability raster is drawn as a colour ramp from the threshold up, transparent below it (the
ground the model calls ground is not painted over the imagery); only its roof band is drawn, so
a contact band stays off. A binary raster is drawn as one colour where it is 1.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET

#: a colour-blind-safe ramp (viridis' upper half): low confidence teal, high yellow
RAMP = ("#21918c", "#5ec962", "#fde725")
ROOF_COLOUR = "#fde725"


def _document() -> tuple[ET.Element, ET.Element]:
    root = ET.Element("qgis", version="3.28", styleCategories="AllStyleCategories")
    pipe = ET.SubElement(root, "pipe")
    return root, pipe


def probability_style(scale: float, threshold: float) -> str:
    """The QML of a probability raster whose value ``scale`` stands for 1: roof band only, a ramp
    from ``threshold`` to 1, transparent below (values outside the ramp are clipped)."""
    root, pipe = _document()
    low, high = threshold * scale, float(scale)
    renderer = ET.SubElement(
        pipe,
        "rasterrenderer",
        type="singlebandpseudocolor",
        band="1",
        opacity="0.8",
        alphaBand="-1",
        classificationMin=repr(low),
        classificationMax=repr(high),
    )
    shader = ET.SubElement(
        ET.SubElement(renderer, "rastershader"),
        "colorrampshader",
        colorRampType="INTERPOLATED",
        classificationMode="1",
        clip="1",
        minimumValue=repr(low),
        maximumValue=repr(high),
    )
    for k, colour in enumerate(RAMP):
        value = low + (high - low) * k / (len(RAMP) - 1)
        ET.SubElement(
            shader, "item", alpha="255", value=repr(value), color=colour, label=f"roof probability {value / scale:.2f}"
        )
    return _text(root)


def binary_style() -> str:
    """The QML of a 0/1 raster: roof in one colour, the rest transparent."""
    root, pipe = _document()
    renderer = ET.SubElement(pipe, "rasterrenderer", type="paletted", band="1", opacity="0.6", alphaBand="-1")
    palette = ET.SubElement(renderer, "colorPalette")
    ET.SubElement(palette, "paletteEntry", value="0", color="#000000", alpha="0", label="ground")
    ET.SubElement(palette, "paletteEntry", value="1", color=ROOF_COLOUR, alpha="255", label="roof")
    return _text(root)


def _text(root: ET.Element) -> str:
    ET.indent(root)
    return "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n" + ET.tostring(root, encoding="unicode") + "\n"


def style_path(raster: str | os.PathLike) -> str:
    """Where QGIS looks for a raster's style: beside it, ``NAME.qml``."""
    return os.path.splitext(os.fspath(raster))[0] + ".qml"


def write_style(path: str | os.PathLike, qml: str) -> None:
    with open(path, "w") as f:
        f.write(qml)
