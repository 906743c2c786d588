"""tf.data service: the input pipeline's reading, parsing and batching on CPU machines of their own.

A dispatcher hands out the shards; workers read and batch them; the training process takes
ready batches over gRPC. Used when GPU hosts starve for input: the data work leaves the GPU host.
"""

from __future__ import annotations

from roofseg._tf import tf
from roofseg.errors import RoofsegError

PROTOCOL = "grpc"


def service_address(address: str) -> str:
    """``grpc://HOST:PORT`` (or ``HOST:PORT``) as tf.data wants it; a usage error otherwise."""
    bare = address.split("://", 1)[1] if "://" in address else address
    scheme = address.split("://", 1)[0] if "://" in address else PROTOCOL
    host, _, port = bare.rpartition(":")
    if scheme != PROTOCOL or not host or not port.isdigit():
        raise RoofsegError(None, f"a tf.data service address is grpc://HOST:PORT, got {address!r}")
    return f"{PROTOCOL}://{host}:{port}"


def start_dispatcher(port: int, work_dir: str | None = None) -> tf.data.experimental.service.DispatchServer:
    """A dispatcher on ``port`` (0: any free port). With ``work_dir`` it keeps its state there and
    survives a restart (fault-tolerant mode)."""
    config = tf.data.experimental.service.DispatcherConfig(
        port=port, work_dir=work_dir, fault_tolerant_mode=bool(work_dir)
    )
    return tf.data.experimental.service.DispatchServer(config)


def start_worker(
    dispatcher: str, port: int = 0, worker_address: str | None = None
) -> tf.data.experimental.service.WorkerServer:
    """A worker registered with ``dispatcher`` (HOST:PORT), serving on ``port``; ``worker_address``
    is how the dispatcher and trainers reach it (default: localhost:PORT)."""
    config = tf.data.experimental.service.WorkerConfig(
        dispatcher_address=service_address(dispatcher).split("://", 1)[1],
        port=port,
        worker_address=worker_address or "localhost:%port%",
    )
    return tf.data.experimental.service.WorkerServer(config)


def distribute(ds: tf.data.Dataset, address: str, job_name: str | None = None) -> tf.data.Dataset:
    """Run ``ds`` (everything before this call) on the service's workers.

    ``distributed_epoch``: the dispatcher splits the shard list among the workers, so an epoch
    reads every shard once, whatever the number of workers.
    """
    return ds.apply(
        tf.data.experimental.service.distribute(
            processing_mode="distributed_epoch", service=service_address(address), job_name=job_name
        )
    )
