"""``mottling serve``: the HTTP service and bedside page under uvicorn."""

from __future__ import annotations

import os

import click


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to listen on (0.0.0.0 to accept other machines, e.g. in a container).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Worker processes; each loads the model once.")
@click.option("--model", "model_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="ONNX model (default: MOTTLING_MODEL_PATH or the shipped model).")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
def serve(host: str, port: int, workers: int, model_path: str | None, log_level: str) -> None:
    """Serve the API (/v1/*) and the bedside page (/). Settings come from MOTTLING_* variables."""
    import uvicorn

    if workers > 1 and "MOTTLING_THREADS" not in os.environ:
        # N workers each with an ONNX Runtime pool as wide as the machine would oversubscribe it.
        os.environ["MOTTLING_THREADS"] = str(max(1, (os.cpu_count() or 1) // workers))
    if model_path is not None:
        # Workers are separate processes: the environment is how the setting reaches them.
        os.environ["MOTTLING_MODEL_PATH"] = os.path.abspath(model_path)
    uvicorn.run("serving.app:create_app", factory=True, host=host, port=port, workers=workers,
                log_level=log_level, proxy_headers=False, server_header=False,
                timeout_graceful_shutdown=10)
