"""What the stages hand each other, typed, versioned and frozen: one read and one write each.

- :mod:`~roofseg.contracts.sizes`: tile sizes, ground resolutions and their one check each
- :mod:`~roofseg.contracts.versions`: the ``NAME/N`` format stamp every file carries
- :mod:`~roofseg.contracts.card`: the model card inside a ``.keras`` file
- :mod:`~roofseg.contracts.manifest`: a tiling run's ``manifest.json``
- :mod:`~roofseg.contracts.run`: a prediction folder's run record, ``predict.json``
- :mod:`~roofseg.contracts.tags`: the GeoTIFF tags that say what a prediction raster holds
- :mod:`~roofseg.contracts.tile`: the ``tf.train.Example`` layout of one tile

Submodules are imported by name; this face imports nothing, so reading a card never imports
TensorFlow (only :mod:`~roofseg.contracts.tile` needs it).
"""
