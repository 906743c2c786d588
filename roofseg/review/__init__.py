"""``roofseg review``: predictions reviewed in the browser, building by building, on 127.0.0.1.

- :mod:`~roofseg.review.queue`: the buildings to review (footprint files beside their scenes);
- :mod:`~roofseg.review.store`: the decisions, in SQLite beside the footprints;
- :mod:`~roofseg.review.tiles`: the imagery as map tiles (rio-tiler);
- :mod:`~roofseg.review.export`: the accepted buildings through the vector writer of ``predict``;
- :mod:`~roofseg.review.server`: the HTTP server and its page (Leaflet, vendored in ``static/``).
"""
