"""What the Apache Beam runners of tile and predict share: pipeline options, and failures in one line."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shlex
import sys
import tempfile
from collections.abc import Iterator
from typing import TYPE_CHECKING, TextIO

from roofseg.errors import RoofsegError

if TYPE_CHECKING:
    from apache_beam.options.pipeline_options import PipelineOptions

LOCAL_DEFAULTS = ["--runner=DirectRunner", "--direct_running_mode=multi_processing"]
_ROOFSEG_ERROR = re.compile(r"roofseg\.errors\.RoofsegError: (.+)")


def beam_options(text: str | None) -> PipelineOptions:
    """Beam's pipeline options from ``--beam-options`` (one string, as on a command line). Local
    by default: the DirectRunner with a process per core of this machine."""
    try:
        # an optional extra, imported where it is used
        from apache_beam.options.pipeline_options import PipelineOptions
    except ImportError:
        raise RoofsegError(None, "--runner beam needs Apache Beam: pip install 'roofseg[beam]'") from None
    args = shlex.split(text or "")
    if not any(a.startswith("--runner") for a in args):
        args = LOCAL_DEFAULTS + [f"--direct_num_workers={os.cpu_count() or 1}"] + args
    if not any(a.startswith("--default_sdk_harness_log_level") for a in args):
        args.append("--default_sdk_harness_log_level=WARNING")  # the workers' INFO lines would bury the bar
    return PipelineOptions(args)


def pipeline_error(exc: BaseException) -> RoofsegError:
    """The one line for a failed pipeline: the RoofsegError a worker raised, which Beam hands back
    inside its own error's text, else the last line of that text."""
    text = str(exc)
    found = _ROOFSEG_ERROR.findall(text)
    if found:
        return RoofsegError(None, found[-1].strip())
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return RoofsegError(None, f"the Beam pipeline failed ({lines[-1] if lines else type(exc).__name__})")


@contextlib.contextmanager
def quiet_beam() -> Iterator[TextIO]:
    """Beam's own output off for the block; yields a stream to the real stderr, for progress bars.

    Beam's import warns on the root logger, and its workers — threads here, or processes that
    inherit this one's stderr — print each failure's traceback themselves. The failure reaches the
    user as roofseg's one line instead (see :func:`pipeline_error`).
    """
    loggers = [logging.getLogger(), logging.getLogger("apache_beam")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    sys.stderr.flush()
    terminal = os.fdopen(os.dup(2), "w", buffering=1)
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            with contextlib.redirect_stderr(terminal):
                yield terminal
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            terminal.close()
            for lg, level in zip(loggers, levels):
                lg.setLevel(level)
