"""Footprints from a prediction raster: polygons traced and split per building, regular outlines,
buildings already mapped left out, and the vector files (OGR formats and ``.osm``)."""
