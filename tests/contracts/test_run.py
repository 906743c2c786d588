"""A prediction folder's run record and the stamp its rasters carry."""

from __future__ import annotations

import json

import pytest

from roofseg.contracts.run import RunRecord, read_run_record, write_run_record
from roofseg.errors import RoofsegError


def test_a_run_record_reads_back_equal_and_its_stamp_follows_what_it_says(tmp_path):
    record = RunRecord({"path": "/m.keras", "bytes": 1}, {"tile": 64, "threshold": 0.5}, {"suffix": ".gpkg"})
    write_run_record(tmp_path / "predict.json", record)
    back = read_run_record(tmp_path / "predict.json")
    assert back == record and back.stamp == record.stamp
    other = RunRecord(record.model, {"tile": 128, "threshold": 0.5}, record.vector)
    assert other.stamp != record.stamp and record.differences(other) == ["options"]


def test_a_newer_run_record_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "predict.json"
    path.write_text(json.dumps({"format": "roofseg-predictions/5", "model": None, "options": {}}))
    with pytest.raises(RoofsegError) as err:
        read_run_record(path)
    assert err.value.path == str(path) and "newer roofseg" in err.value.problem
