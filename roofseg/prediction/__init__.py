"""Predicting whole scenes window by window into georeferenced rasters and footprints."""
