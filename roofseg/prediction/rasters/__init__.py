"""The window engine and the rasters it writes: windows read, predicted by an engine, blended, and
written on the scene's grid (probability, binary mask, QGIS style, mosaic)."""
