# make demo — set up .venv if missing, then run the whole job on the built-in sample scene.
# make test — set up .venv if missing, then run the test suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DEMO   := demo

.PHONY: install demo test bench clean

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
