# make demo — set up .venv if missing, then run the whole job on the built-in sample scene.
# make test — set up .venv if missing, then run the test suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DEMO   := demo

# make base — the base model roofseg ships (roofseg/models/base.keras), continued from the shipped base
# (BASE_INIT=base) on every labelled place of the shared data but Dhaka, the unseen yardstick: the HOT
# scenes at every zoom, Banepa, the Kampala chips and the Massachusetts tiles (PNG: 1 m declared, white
# is no data), and BASE_MOSAICS dense settlements pasted from the HOT scenes' and Banepa's roofs
# (roofseg mosaic); tiles drawn in equal shares per place and GSD; a warm-up and cosine decay over
# BASE_EPOCHS x BASE_STEPS steps. Resumable: run it again after a kill. BASE_SCENES names other scenes.
BASE_DATA   ?= ../shared/data
BASE_HOT    := $(BASE_DATA)/hotosm-ramp-sample
BASE_SCENES ?= $(wildcard $(BASE_HOT)/scenes/*_image.tif $(BASE_HOT)/scenes-other-zooms/*_image.tif \
	$(BASE_DATA)/more-places/banepa_*_image.tif)
BASE_CHIPS  ?= $(BASE_HOT)/kampala-chips
BASE_MASS   ?= $(BASE_DATA)/massachusetts-buildings-sample
BASE_WORK   ?= base-build
BASE_TILES  ?= $(BASE_WORK)/tiles
BASE_RUN    ?= $(BASE_WORK)/run
BASE_STEPS  ?= 100
BASE_EPOCHS ?= 20
BASE_LR     ?= 3e-4
BASE_INIT   ?= base
# the model whose tuned post-processing (and reading of coarse scenes) the new base keeps: a
# continuation keeps its base's until it is tuned itself (empty: none; run roofseg tune on it)
BASE_CHOICE ?= $(BASE_INIT)
# the checkpoint shipped: last (the latest epoch: the most steps) or best (lowest validation loss); the
# validation blocks hold no place like Dhaka, and the last two bases shipped were their runs' ends
BASE_CHECKPOINT ?= last
# scenes of small houses touching on all sides, pasted from real roofs (0: none): with 8, Dhaka's
# object F1 went 0.295 -> 0.398 at 1,500 steps beside the same run without them (README, "The base model")
BASE_MOSAICS ?= 8
# ImageNet weights where the Keras cache has them (this machine cannot download them), else random
BASE_WEIGHTS ?= $(if $(wildcard $(or $(KERAS_HOME),$(HOME)/.keras)/models/resnet34_imagenet_1000_no_top.h5),imagenet,none)
BASE_LICENCE ?= imagery (c) OpenAerialMap contributors CC BY 4.0; footprints (c) OpenStreetMap contributors ODbL; Massachusetts Buildings (Mnih 2013)
BASE_TILE_ARGS ?=
# the border loss's weight (train --contact-weight): 4 led 1 on every Dhaka block and on dense Kampala
# at 1,500 steps from the shipped base (bench/recipe.py, 2026-12-06)
BASE_CONTACT_WEIGHT ?= 4
# the augmentation the shipped base was trained with (roofseg.contracts.augment.CITIES); empty: the defaults
BASE_AUGMENT ?= --scale 0.3 --hue 0.03 --saturation 0.3 --gain 0.1 --gamma 0.3 --blur 0.2 --jpeg 0.2
BASE_TRAIN_ARGS ?=

# one folder per count, so a changed BASE_MOSAICS writes its own settlements instead of reusing the old
BASE_MOSAIC_DIR := $(BASE_WORK)/mosaic-$(BASE_MOSAICS)
$(BASE_MOSAIC_DIR)/done: | $(STAMP)
	$(if $(filter-out 0,$(BASE_MOSAICS)),$(BIN)/roofseg mosaic $(BASE_SCENES) -o $(BASE_MOSAIC_DIR) \
		--count $(BASE_MOSAICS) --quiet,mkdir -p $(BASE_MOSAIC_DIR))
	touch $@

$(BASE_WORK)/scenes.txt: $(BASE_MOSAIC_DIR)/done
	mkdir -p $(BASE_WORK)
	( for f in $(abspath $(BASE_SCENES)) $(abspath $(wildcard $(BASE_MOSAIC_DIR)/*_image.tif)); do echo "$$f"; done; \
	  for d in chips val-chips; do l=$$( [ $$d = chips ] && echo labels || echo val-labels ); \
	    for f in $(abspath $(BASE_CHIPS))/$$d/*.tif; do n=$$(basename $$f .tif); \
	      echo "$$f $(abspath $(BASE_CHIPS))/$$l/2/$$n.geojson"; done; done; \
	  for f in $(abspath $(BASE_MASS))/images/*.png; do echo "$$f $(abspath $(BASE_MASS))/masks/$$(basename $$f)"; done \
	) > $@.tmp && mv $@.tmp $@

base-tiles: $(STAMP) $(BASE_WORK)/scenes.txt
	$(BIN)/roofseg tile $(BASE_WORK)/scenes.txt -o $(BASE_TILES) --tile-size 256 --overlap 128 --split-by block \
		--split-block 1024 --val 0.15 --test 0 --contact-m 0.9 --contact-kind outline --pixel-size 1 --nodata 255 \
		--quiet $(BASE_TILE_ARGS)

# the training of make base alone, on BASE_TILES into BASE_RUN (bench/recipe.py runs its arms through it)
base-train: $(STAMP)
	$(BIN)/roofseg train $(BASE_TILES)/manifest.json -o $(BASE_RUN) --encoder-weights $(BASE_WEIGHTS) \
		$(if $(BASE_INIT),--init-from $(BASE_INIT)) --lr $(BASE_LR) --schedule cosine --warmup-steps 100 \
		--balance place --loss bce_dice --contact-weight $(BASE_CONTACT_WEIGHT) --widen-gsd --validation-steps 30 --batch 8 --steps-per-epoch $(BASE_STEPS) --epochs $(BASE_EPOCHS) \
		--patience 1000 --data-licence "$(BASE_LICENCE)" $(BASE_AUGMENT) $(BASE_TRAIN_ARGS)

base: base-tiles  # then its training, in order even under make -j
	$(MAKE) --no-print-directory base-train
	$(BIN)/roofseg ship-base $(BASE_RUN)/$(BASE_CHECKPOINT).keras $(BASE_WORK)/base.keras --manifest $(BASE_TILES)/manifest.json \
		--overwrite $(if $(BASE_MEASURED),--measured $(BASE_MEASURED)) $(if $(BASE_CHOICE),--postprocess-of $(BASE_CHOICE))
	@echo "base model: $(BASE_WORK)/base.keras (copy it to roofseg/models/base.keras to ship it)"

.PHONY: install demo test bench base base-tiles base-train clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,beam,cloud,onnx,openvino]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/roofseg sample $(DEMO)/scene --size 2048 --quiet
	$(BIN)/roofseg tile $(DEMO)/scene -o $(DEMO)/tiles --tile-size 128 --quiet
	$(BIN)/roofseg train $(DEMO)/tiles/manifest.json -o $(DEMO)/run --encoder-weights none \
		--epochs 12 --batch 8 --lr 1e-3 --overwrite
	$(BIN)/roofseg evaluate $(DEMO)/run/best.keras $(DEMO)/tiles/manifest.json --split test \
		--json $(DEMO)/run/test_metrics.json --quiet
	$(BIN)/roofseg predict $(DEMO)/run/best.keras $(DEMO)/scene/sample_image.tif \
		$(DEMO)/prediction.tif --vector $(DEMO)/roofs.gpkg --preview $(DEMO)/preview.png --overwrite
	$(BIN)/roofseg evaluate-scene $(DEMO)/prediction.tif $(DEMO)/scene/sample_labels.geojson \
		--picture $(DEMO)/errors.png --scene $(DEMO)/scene/sample_image.tif --pr-curve $(DEMO)/pr.png \
		--json $(DEMO)/scene_metrics.json --quiet
	@echo
	@echo "Demo outputs:"
	@echo "  tiles and manifest:     $(DEMO)/tiles/manifest.json"
	@echo "  model and curves:       $(DEMO)/run/best.keras, $(DEMO)/run/curves.png, $(DEMO)/run/samples.png"
	@echo "  prediction raster:      $(DEMO)/prediction.tif with its QGIS style (open in QGIS over $(DEMO)/scene/sample_image.tif)"
	@echo "  predicted footprints:   $(DEMO)/roofs.gpkg (area_m2, confidence)"
	@echo "  pictures:               $(DEMO)/preview.png, $(DEMO)/errors.png, $(DEMO)/pr.png"
	@echo "  scene metrics:          $(DEMO)/scene_metrics.json"

# lint and format check first (seconds); then one worker per core (at most 4), a test file's tests on
# one worker so they share its fixtures, and the 25 slowest tests named at the end
test: $(STAMP)
	$(BIN)/ruff check roofseg tests bench
	$(BIN)/ruff format --check roofseg tests bench
	$(BIN)/python -m pytest -q -n auto --maxprocesses 4 --dist loadfile --durations=25

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python bench/tile.py
	$(BIN)/python bench/pipeline.py
	$(BIN)/python bench/predict.py
	$(BIN)/python bench/train.py

clean:
	rm -rf $(DEMO) .pytest_cache .hypothesis
