"""Training runs the way users run them: killed and resumed, over two devices, over two worker
processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from conftest import epochs_logged

pytestmark = pytest.mark.slow


def test_a_killed_run_resumes_instead_of_starting_over(manifest, tmp_path):
    run = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "roofseg.cli",
        "train",
        str(manifest),
        "-o",
        str(run),
        "--encoder-weights",
        "none",
        "--epochs",
        "4",
        "--batch",
        "4",
        "--steps-per-epoch",
        "3",
        "--validation-steps",
        "1",
        "--strategy",
        "default",
        "--quiet",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    # an epoch is logged first, then backed up (the backup's index file is written last)
    while not list((run / "backup").rglob("checkpoint")) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = epochs_logged(run)
    assert 1 <= len(done) < 4, "the kill should land after the first epoch and before the last"
    assert (run / "backup").exists()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
    assert epochs_logged(run) == [0, 1, 2, 3]  # no epoch run twice: the second run went on from the backup
    assert (run / "best.keras").exists() and not (run / "backup").exists()


def test_mirrored_strategy_on_two_logical_cpus_trains_and_checkpoints(manifest, tmp_path):
    from roofseg.training.train import TrainConfig, train

    cfg = TrainConfig(
        manifest=str(manifest),
        out_dir=str(tmp_path),
        encoder_weights="none",
        epochs=1,
        batch_size=2,
        steps_per_epoch=2,
        validation_steps=1,
        strategy="mirrored",
        devices=["/cpu:0", "/cpu:1"],
        samples=2,
    )
    summary = train(cfg, verbose=0)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["replicas"] == 2 and config["global_batch"] == 4
    assert (tmp_path / "best.keras").exists() and summary["epochs_run"] == 1


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def test_multiworker_with_two_local_workers_trains_one_epoch(manifest, tmp_path):
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    for index in range(2):
        env = {**os.environ, "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
        cmd = [
            sys.executable,
            "-m",
            "roofseg.cli",
            "train",
            str(manifest),
            "-o",
            str(tmp_path / "run"),
            "--encoder-weights",
            "none",
            "--epochs",
            "1",
            "--batch",
            "2",
            "--steps-per-epoch",
            "2",
            "--validation-steps",
            "1",
            "--strategy",
            "multiworker",
            "--quiet",
        ]
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs[0][-3000:] + outs[1][-3000:]
    assert "2 replicas over the workers of TF_CONFIG" in outs[0]  # said in a user's words, not by class
    assert not (tmp_path / "run" / "workers").exists()  # the other worker's scratch files are gone
    assert (tmp_path / "run" / "best.keras").exists()
    assert epochs_logged(tmp_path / "run") == [0]
