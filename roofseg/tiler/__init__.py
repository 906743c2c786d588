"""Cutting scenes and their labels into tiles written to TFRecord shards."""
