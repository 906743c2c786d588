"""Reading georeferenced scenes window by window: the one path the tiler and the predictor share."""
