"""What each target channel of a tile holds, in order: the manifest's ``targets``, the model's
output channels (its card's ``outputs``) and the bands of a prediction raster."""

ROOF = "roof"
CONTACT = "contact"  # pixels where two buildings meet (see roofseg.tiler.targets)
TARGETS = (ROOF, CONTACT)

#: the border band's width in metres of ground (tile --contact-m), drawn in each scene's pixels:
#: what parted Dhaka's small houses (a band of 0.44 m lost most of them; README, "The base model")
CONTACT_M = 0.9
#: ... and in pixels where a scene has no ground pixel size, or where it is asked in px (tile --contact-px)
CONTACT_PX = 3

#: the kinds of border target (see roofseg.tiler.targets); the first is what tile writes by default
CONTACT_KINDS = ("outline", "between", "distance", "relative")
#: the kinds whose target is graded, stored 0–255 and read as a fraction (the others: 0/1)
GRADED_KINDS = ("distance", "relative")
