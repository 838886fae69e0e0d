"""``osum serve``: the OpenAI-compatible HTTP API and the web page, on 127.0.0.1:8000 unless told otherwise."""

from __future__ import annotations

import argparse
import os
import sys

from osum.cli.common import add_kv_cache_arg

HELP = "serve a model over HTTP (OpenAI-compatible API, batching, web page)"


def add_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="mini", help="checkpoint directory or preset (default: mini)")
    p.add_argument(
        "--model-id", default="", help="the name clients use as `model` (default: the model's name)"
    )
    p.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)"
    )
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--api-key",
        default=os.environ.get("OSUM_API_KEY"),
        help="require `Authorization: Bearer KEY` on /v1 and /metrics (default: $OSUM_API_KEY, else none)",
    )
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    p.add_argument(
        "--dtype", help="LLM dtype: float32, bf16, fp16 (default: bf16 on CUDA, float32 on CPU); int8: CPU only"
    )
    p.add_argument("--max-batch-size", type=int, default=8, help="queries (clip x task) decoded together")
    p.add_argument("--max-wait-ms", type=float, default=10.0, help="how long a batch waits to fill up")
    p.add_argument("--max-queue", type=int, default=64, help="requests waiting for the model; more get 429")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per request before 504")
    p.add_argument("--max-upload-mb", type=float, default=25.0, help="largest audio upload (413 above)")
    p.add_argument(
        "--max-audio-seconds",
        type=float,
        default=600.0,
        help="longest clip (default 600; longer than the model's window is cut at pauses)",
    )
    p.add_argument("--max-prompt-tokens", type=int, default=1024, help="longest instruction (default 1024)")
    p.add_argument("--max-new-tokens", type=int, default=200)
    add_kv_cache_arg(p)
    p.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="allow browser calls from ORIGIN (repeatable; none by default)",
    )
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from osum.serving import ServeSettings, create_app
    except ImportError as exc:
        print(
            f"osum serve: error: {exc.name} is not installed; install the server extra: pip install 'osum[serve]'",
            file=sys.stderr,
        )
        return 2
    from osum.cli.common import load_model

    settings = ServeSettings(
        model_id=args.model_id,
        api_key=args.api_key,
        max_batch_size=args.max_batch_size,
        max_wait_ms=args.max_wait_ms,
        max_queue=args.max_queue,
        request_timeout=args.timeout,
        max_upload_mb=args.max_upload_mb,
        max_audio_seconds=args.max_audio_seconds,
        max_prompt_tokens=args.max_prompt_tokens,
        max_new_tokens=args.max_new_tokens,
        kv_cache=args.kv_cache,
        cors_origins=tuple(args.cors_origin),
    )
    if args.host not in ("127.0.0.1", "localhost", "::1") and settings.api_key is None:
        print(
            f"osum serve: warning: listening on {args.host} without --api-key: anyone who can reach it can use it",
            file=sys.stderr,
        )
    app = create_app(load_model(args), settings)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0
