"""``roofseg data-service``: the servers of a tf.data service (``train --data-service`` uses them)."""

from __future__ import annotations

import click

from roofseg.cli.options import CONTEXT


@click.group("data-service", context_settings=CONTEXT)
def data_service() -> None:
    """Start the servers of a tf.data service, which read, parse and batch tiles for `roofseg train
    --data-service grpc://HOST:PORT` on CPU machines of their own (augmentation stays on the GPUs).

    Use it when GPU hosts starve for input: one dispatcher, then workers on as many CPU machines as
    it takes. Workers read the shards by the manifest's paths, so they must see the same files (a
    shared file system, or shards on gs://). Servers run until stopped (Ctrl-C, SIGTERM).
    """


@data_service.command(context_settings=CONTEXT)
@click.option(
    "--port", default=5050, type=click.IntRange(0, 65535), help="Port to serve on (0: any free port, printed)."
)
@click.option(
    "--work-dir",
    default=None,
    help="Folder (or gs:// path) where the dispatcher keeps its state, so it survives a restart.",
)
def dispatcher(port: int, work_dir: str | None) -> None:
    """Start the dispatcher, which hands the shards out to the workers."""
    # here, not at the top: keeps --help fast
    from roofseg.pipeline.service import start_dispatcher

    server = start_dispatcher(port, work_dir)
    click.echo(f"dispatcher: {server.target}")
    _serve(server)


@data_service.command(context_settings=CONTEXT)
@click.option(
    "--dispatcher", "dispatcher_address", required=True, help="HOST:PORT (or grpc://HOST:PORT) of the dispatcher."
)
@click.option("--port", default=0, type=click.IntRange(0, 65535), help="Port to serve on (0: any free port).")
@click.option(
    "--address", default=None, help="HOST:PORT by which trainers reach this worker. Default: localhost and the port."
)
def worker(dispatcher_address: str, port: int, address: str | None) -> None:
    """Start a worker that reads and batches tiles for the dispatcher's jobs."""
    # here, not at the top: keeps --help fast
    from roofseg.pipeline.service import start_worker

    server = start_worker(dispatcher_address, port, address)
    click.echo(f"worker: registered with {dispatcher_address}")
    _serve(server)


def _serve(server) -> None:
    """Keep this process, and so the server's own threads, alive until it is stopped."""
    # here, not at the top: keeps --help fast
    import sys
    import time

    sys.stdout.flush()
    while server is not None:
        time.sleep(3600)
