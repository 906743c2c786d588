"""Temporaries: every one roofseg writes can be told stale by a later run, wherever a kill lands."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from roofseg.atomic import remove_stale_partials

from helpers import ROOT

# A run that dies before any of its temporaries is removed or renamed: every unlink, rmtree and
# rename is a no-op, as if the process were killed just before it.
DIES_BEFORE_CLEANING = textwrap.dedent("""
    import os, shutil, sys
    from pathlib import Path
    os.unlink = os.remove = lambda *a, **k: None
    os.replace = os.rename = lambda *a, **k: None
    shutil.rmtree = lambda *a, **k: None
    Path.unlink = lambda *a, **k: None
    sys.path.insert(0, "tests")
    from roofseg.atomic import atomic_output, ensure_writable_dir, write_json
    from roofseg.training.model import drop_optimizer_state
    from helpers import tiny_keras
    folder = Path(sys.argv[1])
    ensure_writable_dir(folder)
    write_json(folder / "record.json", {"a": 1})
    model = folder / "m.keras"
    tiny_keras().save(model)
    drop_optimizer_state(model)
""")


def test_every_temporary_left_by_a_dead_run_is_removed_by_the_next(tmp_path):
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-c", DIES_BEFORE_CLEANING, str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    left = sorted(p.name for p in out.iterdir() if p.name != "m.keras")
    assert left, "the dead run left no temporary: the test proves nothing"
    remove_stale_partials(out)
    assert sorted(p.name for p in out.iterdir()) == ["m.keras"], left


def test_a_temporary_keeps_the_outputs_extensions_not_every_dotted_part_of_its_name(tmp_path):
    from roofseg.atomic import temp_path

    for name, ends in [("m.weights.h5", ".partial.weights.h5"), ("best.keras", ".partial.keras"), ("a", ".partial")]:
        assert temp_path(tmp_path / name, keep_suffix=True).name.endswith(ends)
    dotted = "run-gsd0.148-contact-px6-" + "x" * 150 + "_lr0.0003_block1.tif"
    tmp = temp_path(tmp_path / dotted, keep_suffix=True).name
    assert tmp.endswith(".partial.tif") and len(tmp) < len(dotted) + 30
    assert remove_stale_partials(tmp_path, dotted) == 0  # its own, found by the output's name: a live run's
