"""tf.data service: a dispatcher and two workers (roofseg data-service) feed training; every
training tile is read once per epoch.

TensorFlow's servers listen on every interface and cannot be told otherwise, so the test runs
them, and the trainer, in a network namespace of their own whose only interface is the loopback:
nothing outside this machine's 127.0.0.1 can reach them, and they end with the namespace.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap

import pytest

from roofseg.tiler.tile import TileParams

from helpers import ROOT  # noqa: E402
from helpers import tile_dict as tile


def loopback_namespace() -> list[str] | None:
    """The command prefix that runs a shell in a fresh network namespace with only ``lo`` up."""
    if not shutil.which("unshare") or not shutil.which("ip"):
        return None
    probe = subprocess.run(["unshare", "-rn", "sh", "-c", "ip link set lo up"], capture_output=True)
    return ["unshare", "-rn", "sh", "-c"] if probe.returncode == 0 else None


CLIENT = textwrap.dedent("""
    import hashlib, json, sys
    from collections import Counter
    from roofseg.pipeline.dataset import make_dataset
    from roofseg.training.train import TrainConfig, train

    manifest, address, run = sys.argv[1:]

    def tiles(ds):
        return Counter(hashlib.sha1(img.numpy().tobytes()).hexdigest() for batch in ds for img in batch[0])

    every = tiles(make_dataset(manifest, "train", 8, training=False))
    served = make_dataset(manifest, "train", 8, training=True, data_service=address)
    for epoch in range(2):
        seen = tiles(served)
        print("epoch", epoch, sum(seen.values()), sum(every.values()), seen == every, flush=True)
    summary = train(TrainConfig(manifest=manifest, out_dir=run, encoder_weights="none", epochs=1, batch_size=8,
                                validation_steps=1, strategy="default", samples=2, data_service=address), verbose=2)
    print("trained", json.dumps({"epochs_run": summary["epochs_run"]}), flush=True)
""")


def test_a_dispatcher_and_two_workers_feed_every_tile_once_per_epoch(sample_scene, tmp_path):
    prefix = loopback_namespace()
    if prefix is None:
        pytest.skip("no network namespace here (unshare -rn): TensorFlow's servers would listen beyond 127.0.0.1")
    out = tmp_path / "tiles"
    tile(
        [str(sample_scene["image"])],
        out,
        TileParams(size=64, stride=64, split_block=128, val=0.2, test=0.2),
        progress=False,
    )
    (tmp_path / "client.py").write_text(CLIENT)
    cli = f"timeout 450 {sys.executable} -m roofseg.cli data-service"  # servers end by themselves, whatever happens
    script = f"""
        ip link set lo up || exit 1
        {cli} dispatcher --port 5050 > {tmp_path}/dispatcher.log 2>&1 & servers=$!
        {cli} worker --dispatcher localhost:5050 --port 5051 > {tmp_path}/worker1.log 2>&1 & servers="$servers $!"
        {cli} worker --dispatcher localhost:5050 --port 5052 > {tmp_path}/worker2.log 2>&1 & servers="$servers $!"
        timeout 400 {sys.executable} {tmp_path}/client.py {out}/manifest.json grpc://localhost:5050 {tmp_path}/run
        status=$?
        kill $servers
        exit $status
    """
    proc = subprocess.run(prefix + [textwrap.dedent(script)], cwd=ROOT, capture_output=True, text=True, timeout=480)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    epochs = [line.split() for line in proc.stdout.splitlines() if line.startswith("epoch")]
    assert len(epochs) == 2
    for _, _, seen, total, same in epochs:
        assert seen == total and same == "True"
    assert 'trained {"epochs_run": 1}' in proc.stdout
    assert (tmp_path / "run" / "best.keras").exists()
    for worker in ("worker1.log", "worker2.log"):
        assert "registered with localhost:5050" in (tmp_path / worker).read_text()
