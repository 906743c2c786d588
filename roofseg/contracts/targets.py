"""What each target channel of a tile holds, in order: the manifest's ``targets``, the model's
output channels (its card's ``outputs``) and the bands of a prediction raster."""

ROOF = "roof"
CONTACT = "contact"  # pixels where two buildings meet (see roofseg.tiler.targets)
TARGETS = (ROOF, CONTACT)
