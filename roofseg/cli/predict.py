"""``roofseg predict``: whole scenes into georeferenced probability rasters and footprints."""

from __future__ import annotations

import click

from roofseg.cli.options import (
    CONTEXT,
    FiniteRange,
    ModelSource,
    bands_opt,
    batch_opt,
    overwrite_opt,
    parsed_bands,
    quiet_opt,
    resolved_inputs,
    runner_options,
    stac_choice,
    stac_options,
    tile_size_opt,
    xyz_options,
)


@click.command(context_settings=CONTEXT)
@click.argument("model", type=ModelSource())
@click.argument("inputs", nargs=-1, required=True)
@click.argument("output", type=click.Path())
@tile_size_opt(aliases=("--tile",))
@click.option(
    "--overlap",
    default=None,
    type=click.IntRange(0),
    help="Pixels shared by neighbouring windows, blended with a raised-cosine weight. Default: a quarter of "
    "--tile-size, at most 64.",
)
@batch_opt(default=8)
@bands_opt
@click.option(
    "--dtype",
    type=click.Choice(["uint8", "float32"]),
    default="uint8",
    help="Output probability as 0-255 or as 0.0-1.0.",
)
@click.option(
    "--threshold",
    default=None,
    type=FiniteRange(0, 1),
    help="Also write <name>_binary.tif, 1 where the probability is at least this (its tags record the threshold). "
    "With --vector alone, polygons are cut at 0.5 and no binary raster is kept.",
)
@click.option(
    "--vector",
    default=None,
    help="Also write one polygon per building (threshold 0.5 unless --threshold), with area_m2 and confidence: a "
    "file (.gpkg, .fgb, .shp in the scene's CRS; .geojson as RFC 7946 lon/lat; .osm as OSM XML for JOSM) for "
    "one scene, or a format (gpkg, geojson, shp, fgb, osm) for one file per scene.",
)
@click.option(
    "--min-area",
    default=None,
    type=FiniteRange(0),
    help="Polygons smaller than this many m² are dropped from --vector. Default: as `roofseg tune` chose, else 5.",
)
@click.option(
    "--existing",
    default=None,
    type=click.Path(exists=True, dir_okay=False),
    help="--vector: leave out predicted buildings already mapped in this file (any vector file roofseg reads, an OSM "
    "extract .osm/.osm.pbf included, any CRS), so only new buildings come out.",
)
@click.option(
    "--existing-overlap",
    default=0.3,
    type=FiniteRange(0, 1, min_open=True),
    help="--existing: a predicted building is mapped where mapped buildings cover at least this share of its own "
    "area, so a small mapped shed never hides a large new building around it; where they cover it but leave a part "
    "of at least --min-area (a mapped house traced with its new annex), that part is written as new.",
)
@click.option(
    "--existing-crs",
    default=None,
    help="--existing: the CRS of the file of mapped buildings where it states none or a wrong one, e.g. EPSG:3857 "
    "(GeoJSON without a 'crs' member is read as WGS84).",
)
@click.option(
    "--keep-existing",
    is_flag=True,
    help="--existing: write every building whole, with the attribute status 'new', 'mapped' or 'extends' (mapped, "
    "with a new part).",
)
@click.option(
    "--min-confidence",
    default=0.0,
    type=FiniteRange(0, 1),
    help="--vector: leave out buildings whose confidence (the mean roof probability of their pixels, written as the "
    "attribute 'confidence') is lower.",
)
@click.option(
    "--regularize",
    is_flag=True,
    help="--vector outlines straightened, and squared where a building is rectilinear (area kept within 8%).",
)
@click.option(
    "--separate/--no-separate",
    default=True,
    help="--vector: split touching buildings into one polygon each along the contact borders the model predicts "
    "(models trained with contact targets; others give one polygon per roof region).",
)
@click.option(
    "--preview",
    default=None,
    help="Also write a quicklook PNG of the prediction over the scene (decimated reads): a file for one scene, or "
    "'png' for NAME_preview.png per scene.",
)
@click.option(
    "--gsd",
    default=None,
    type=FiniteRange(0, min_open=True),
    help="Ground pixel size in metres to predict at: scenes are read resampled to it, window by window, and the "
    "result is written back on each scene's own grid. Default: a scene inside the GSD range the model was trained "
    "on (recorded in its file) is read at its own GSD, one outside at the range's nearest end; a model tuned by "
    "roofseg tune to read coarse scenes at its own GSD reads those at it.",
)
@click.option(
    "--native",
    is_flag=True,
    help="Predict at each scene's own pixel size, whatever the model was trained at (a warning says when it lies more "
    "than 25% outside the trained range).",
)
@click.option(
    "--engine",
    type=click.Choice(["auto", "tf", "onnx", "openvino"]),
    default="auto",
    help="What runs the model: tf (TensorFlow; GPUs, --devices), onnx (ONNX Runtime) or openvino (OpenVINO) on the "
    "model's ONNX export, converted once and cached beside the model. auto: TensorFlow with GPUs, else the "
    "fastest installed (openvino, onnx, tf). pip install 'roofseg[onnx]' or 'roofseg[openvino]'.",
)
@click.option(
    "--precision",
    type=click.Choice(["f32", "bf16"]),
    default="f32",
    help="Arithmetic of the model: f32 (float32; every engine agrees with TensorFlow within 1/255), or bf16 "
    "(bfloat16, on OpenVINO, on CPUs with bfloat16 arithmetic: 1.4x to 2x as fast; probabilities differ from "
    "float32's by about 0.001 on average and up to 0.5 in rare pixels; see the README).",
)
@click.option("--tta", is_flag=True, help="Average the predictions of the four flips of each window (4x slower).")
@click.option(
    "--match-colours/--no-match-colours",
    default=None,
    help="Match each scene's band histograms to the model's training tiles (the reference in its card) before "
    "predicting, from a sample of the scene's windows (no second full read). Default: as `roofseg tune` chose "
    "(off for an untuned model).",
)
@click.option("--cog", is_flag=True, help="Write Cloud-Optimised GeoTIFFs with overviews.")
@click.option(
    "--devices",
    default="all",
    help="Devices that each hold a replica of the model and predict a share of every batch: 'all' (every visible "
    "GPU; the CPU when there is none) or a list such as 'GPU:0,GPU:1'.",
)
@overwrite_opt
@stac_options
@xyz_options
@runner_options(local="this process, the scenes one after another")
@quiet_opt
def predict(
    model,
    inputs,
    output,
    tile_size,
    overlap,
    batch_size,
    bands,
    dtype,
    threshold,
    vector,
    min_area,
    existing,
    existing_overlap,
    existing_crs,
    keep_existing,
    min_confidence,
    regularize,
    separate,
    preview,
    gsd,
    native,
    engine,
    precision,
    match_colours,
    tta,
    cog,
    devices,
    overwrite,
    stac_asset,
    stac_labels,
    bbox,
    zoom,
    runner,
    beam_options,
    quiet,
) -> None:
    """Predict roofs over whole scenes with MODEL, on each scene's grid.

    One scene: `roofseg predict MODEL SCENE.tif OUT.tif`. Several: `roofseg predict MODEL INPUTS... FOLDER`,
    where INPUTS are scenes, folders of scenes, glob patterns ('scenes/*.tif', quoted), .txt lists or
    STAC Items/ItemCollections/Catalogs (item ids name the outputs); scenes may be URLs, or tile
    server layers 'xyz:https://host/{z}/{x}/{y}.png' read over --bbox at --zoom;
    FOLDER gets NAME.tif per scene (plus NAME_binary.tif, NAME.gpkg when asked), mosaic.vrt joining
    them for a GIS, and predict.json. The model is loaded once; a rerun skips the scenes whose outputs
    are complete, so a killed run resumes. With --runner beam the scenes are the elements of an
    Apache Beam pipeline, the model loaded once per worker.

    A model tuned by `roofseg tune` carries its chosen threshold, seeding, --min-area and
    --regularize, and whether scenes coarser than its own GSD are read at it: they are the
    defaults here; options given on the command line win.

    Scenes are read window by window with the tiler's reader (same band choice, one-band replication
    and percentile stretch), at their own ground pixel size inside the range the model was trained on
    (up to its own GSD where tune chose so), else at the range's nearest end (see --gsd, --native);
    MODEL may be `base`, the model that ships with roofseg, or a URL pinned by #sha256=HEX;
    overlapping windows are blended so no seam shows, edge windows are reflect-padded and cropped.
    Outputs keep the scene's CRS, transform and size, are tiled and DEFLATE-compressed, and mark
    the scene's nodata in their mask band.
    """
    # here, not at the top: keeps --help fast
    from roofseg.errors import RoofsegError
    from roofseg.prediction.many import check_folder_output, predict_one
    from roofseg.prediction.options import single_scene
    from roofseg.prediction.request import PredictRequest, resolve_model, single_outputs

    request = PredictRequest(
        tile=tile_size,
        overlap=overlap,
        batch=batch_size,
        bands=parsed_bands(bands),
        dtype=dtype,
        threshold=threshold,
        vector=vector,
        min_area=min_area,
        regularize=regularize or None,  # a flag cannot say no: unsaid, tune's choice stands
        separate=separate,
        min_confidence=min_confidence,
        existing=existing,
        existing_overlap=existing_overlap,
        existing_crs=existing_crs,
        keep_existing=keep_existing,
        preview=preview,
        gsd=gsd,
        native=native,
        engine=engine,
        precision=precision,
        match_colours=match_colours,
        tta=tta,
        cog=cog,
        devices=devices,
    )
    inputs = resolved_inputs(inputs, bbox, zoom)
    stac = stac_choice(stac_asset, stac_labels)
    one = single_scene(inputs, output) and runner == "local"
    try:
        resolved = resolve_model(model, request)  # the card read once a run
        if not one:
            check_folder_output(output, inputs, stac)
    except RoofsegError as exc:
        if not str(exc.path).startswith("--") and exc.path != "OUTPUT":
            raise
        raise click.BadParameter(exc.problem, param_hint=str(exc.path)) from None
    if one:
        result = predict_one(model, inputs[0], output, resolved, single_outputs(output, request, resolved), overwrite,
                             progress=not quiet)  # fmt: skip
        _echo_one(result, resolved)
    else:
        _many_scenes(model, inputs, output, resolved, bool(preview), overwrite, quiet, stac, runner, beam_options)


def _echo_one(result: dict, resolved) -> None:
    at = f", predicted at {result['gsd']:.3g} m" if result["gsd"] else ""
    click.echo(
        f"prediction: {result['prediction']} ({result['width']}x{result['height']} px, {result['windows']} windows{at})"
    )
    if result["binary"]:
        click.echo(f"binary mask: {result['binary']}")
    if result.get("vector"):
        vectors = resolved.vectors
        click.echo(
            f"footprints: {result['vector']} ({result['polygons']} polygons of at least {vectors.min_area:g} m²"
            f"{', regular outlines' if vectors.regularize else ''})"
        )
    if result.get("preview"):
        click.echo(f"preview: {result['preview']}")


def _many_scenes(
    model, inputs, output, resolved, preview: bool, overwrite: bool, quiet: bool, stac, runner: str, beam_options
) -> None:
    # here, not at the top: keeps --help fast
    from roofseg.prediction.many import predict_scenes

    result = predict_scenes(
        model,
        inputs,
        output,
        resolved.options,
        resolved.vectors,
        overwrite,
        progress=not quiet,
        stac=stac,
        runner=runner,
        beam_options=beam_options,
        preview=preview,
        card=resolved.card,
    )
    click.echo(
        f"{result['scenes']} scenes: {result['predicted']} predicted, {result['skipped']} already done, in "
        f"{result['folder']}"
    )
    for mosaic in result["mosaics"]:
        click.echo(f"mosaic: {mosaic}")
