"""The `gendoc` command: one entry point, a subcommand per component (docs/architecture.md)."""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

EXAMPLES = Path(__file__).parent / "examples"


class ClientSettings(BaseSettings):
    """What `gendoc render` reads from the environment (GENDOC_URL)."""

    model_config = SettingsConfigDict(env_prefix="GENDOC_", extra="ignore")

    url: str = Field("http://127.0.0.1:8080", description="The service that `render` calls.")


def _overrides(args: argparse.Namespace, names: list[str]) -> dict[str, Any]:
    """Flags given on the command line, to override the GENDOC_* environment."""
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}


_STORE_URL_HELP = ("s3://BUCKET/PREFIX: keep templates in S3-compatible object storage "
                   "(endpoint, region and credentials from GENDOC_S3_*; docs/store.md); "
                   "default: the directory")


# -- gendoc serve ------------------------------------------------------------
def _serve(args: argparse.Namespace) -> int:
    import uvicorn
    from gendoc_service.app import create_app
    from gendoc_service.settings import ServiceSettings

    from gendoc import logs

    settings = ServiceSettings(**_overrides(
        args, ["host", "port", "store_dir", "store_url", "converter_url", "concurrency",
               "queue_capacity", "shutdown_timeout", "log_level"]
    ))
    logs.configure(settings.log_level, settings.log_format)
    # On SIGTERM uvicorn stops accepting, lets open requests finish for this long
    # (GENDOC_SHUTDOWN_TIMEOUT, within the pod's grace period), then the app's
    # lifespan stops the render workers.
    uvicorn.run(
        create_app(settings), host=settings.host, port=settings.port, log_config=None,
        timeout_graceful_shutdown=math.ceil(settings.drain_seconds()),
    )
    return 0


# -- gendoc converter ---------------------------------------------------------
def _converter(args: argparse.Namespace) -> int:
    from gendoc_converter.server import run
    from gendoc_converter.settings import ConverterSettings

    settings = ConverterSettings(**_overrides(args, ["host", "port", "pool_size", "log_level"]))
    return run(settings)


# -- gendoc operator ------------------------------------------------------------
def _operator(args: argparse.Namespace) -> int:
    from gendoc_operator.main import run
    from gendoc_operator.settings import OperatorSettings

    overrides = _overrides(args, ["health_host", "health_port", "resync_seconds",
                                  "default_service_image", "default_converter_image",
                                  "log_level"])
    if args.namespace:
        overrides["namespaces"] = args.namespace
    return run(OperatorSettings(**overrides))


# -- gendoc up ------------------------------------------------------------------
def _up(args: argparse.Namespace) -> int:
    """Converter and service together on loopback; Ctrl-C or SIGTERM stops both."""
    from gendoc.procs import GendocProcess, spawn_gendoc

    converter_url = f"http://127.0.0.1:{args.converter_port}"
    running: list[GendocProcess] = []

    def stop(*_: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        # Same process group as `gendoc up`, so a terminal's Ctrl-C reaches all.
        running.append(spawn_gendoc(
            ["converter", "--port", str(args.converter_port)], args.converter_port, "/health",
            timeout=args.start_timeout, new_session=False,
        ))
        running.append(spawn_gendoc(
            ["serve", "--port", str(args.port), "--converter-url", converter_url,
             *(["--store-dir", str(args.store_dir)] if args.store_dir else []),
             *(["--store-url", args.store_url] if args.store_url else [])],
            args.port, "/readyz", timeout=args.start_timeout, new_session=False,
        ))
        print(f"gendoc up: service http://127.0.0.1:{args.port}, converter {converter_url}, "
              f"playground http://127.0.0.1:{args.port}/ui/ (Ctrl-C stops both)",
              file=sys.stderr, flush=True)
        if args.ready_file:
            Path(args.ready_file).write_text("ready\n")
        # Block until either child exits, without reaping it (WNOWAIT), so that
        # Popen still collects its status; a signal ends the wait at once.
        os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOWAIT)
        return 1  # one of them died on its own
    except KeyboardInterrupt:
        return 0
    finally:
        # Service first (stops taking requests, drains), then the converter.
        for p in reversed(running):
            p.stop()


# -- gendoc render ----------------------------------------------------------------
def _render(args: argparse.Namespace) -> int:
    import httpx

    template = Path(args.template)
    data_text = Path(args.data).read_text() if args.data != "-" else sys.stdin.read()
    fmt = args.format or (Path(args.output).suffix.lstrip(".").lower() if args.output else "pdf")
    if fmt not in ("pdf", "docx"):
        print(f"gendoc render: cannot tell the format from {args.output!r}; use --format",
              file=sys.stderr)
        return 2
    fields = {"data": data_text, "format": fmt, "strict": "true" if args.strict else "false"}
    # Unset: the service's defaults (GENDOC_DEFAULT_LOCALE / _TIMEZONE) apply.
    fields.update({k: v for k in ("locale", "timezone") if (v := getattr(args, k))})
    try:
        response = httpx.post(
            f"{args.url.rstrip('/')}/v1/render",
            files={"template": (template.name, template.read_bytes())},
            data=fields,
            timeout=args.timeout,
        )
    except httpx.HTTPError as exc:
        print(f"gendoc render: cannot reach {args.url}: {exc}", file=sys.stderr)
        return 1
    if response.status_code != 200:
        try:
            problem = response.json()
            print(f"gendoc render: {response.status_code} {problem.get('title')}: "
                  f"{problem.get('detail')}",
                  file=sys.stderr)
            for key in ("variables", "errors", "context"):
                if key in problem:
                    value = json.dumps(problem[key], ensure_ascii=False)
                    print(f"  {key}: {value}", file=sys.stderr)
        except ValueError:
            print(f"gendoc render: {response.status_code}: {response.text[:500]}", file=sys.stderr)
        return 1
    output = Path(args.output or f"{template.stem}.{fmt}")
    output.write_bytes(response.content)
    print(f"gendoc render: wrote {output.resolve()} ({len(response.content)} bytes)")
    return 0


# -- gendoc bench -------------------------------------------------------------------
def _bench(argv: list[str]) -> int:
    """`gendoc bench [stack|converter|jobs|report] ...`: each suite parses its own options."""
    if argv[:1] == ["jobs"]:
        from gendoc.bench.jobs import main as jobs_bench

        return jobs_bench(argv[1:])
    if argv[:1] == ["converter"]:
        from gendoc_converter.bench import main as converter_bench

        return converter_bench(argv[1:])
    from gendoc.bench import main as stack_bench

    return stack_bench(argv[1:] if argv[:1] == ["stack"] else argv)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gendoc", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _add_component_commands(sub)
    _add_local_commands(sub)
    return parser


def _add_component_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """One subcommand per container: what each image runs."""
    p = sub.add_parser("serve", help="run the rendering service (container gendoc-service)")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--store-dir", type=Path, help="template store directory")
    p.add_argument("--store-url", help=_STORE_URL_HELP)
    p.add_argument("--converter-url", help="Gotenberg-compatible converter; '' disables PDF")
    p.add_argument("--concurrency", type=int, help="render requests served at once")
    p.add_argument("--queue-capacity", type=int, help="requests that may wait before 429")
    p.add_argument("--shutdown-timeout", type=float,
                   help="seconds admitted requests may take to finish after SIGTERM")
    p.add_argument("--log-level")
    p.set_defaults(func=_serve)

    p = sub.add_parser("converter",
                       help="run the LibreOffice converter (container gendoc-converter)")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--pool-size", type=int, help="warm LibreOffice instances (default: CPU count)")
    p.add_argument("--log-level")
    p.set_defaults(func=_converter)

    p = sub.add_parser("operator", help="run the DocGenerator operator (container gendoc-operator)")
    p.add_argument("--namespace", action="append",
                   help="watch this namespace (repeatable); default: all namespaces")
    p.add_argument("--health-host", help="address of the liveness endpoint GET /healthz")
    p.add_argument("--health-port", type=int)
    p.add_argument("--resync-seconds", type=float, help="re-converge every DocGenerator this often")
    p.add_argument("--default-service-image", help="service image when a spec names none")
    p.add_argument("--default-converter-image", help="converter image when a spec names none")
    p.add_argument("--log-level")
    p.set_defaults(func=_operator)


def _add_local_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Commands for a developer's machine: the local stack, a render, the benchmark."""
    p = sub.add_parser("up", help="run converter and service together on loopback, no Kubernetes")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--converter-port", type=int, default=3000)
    p.add_argument("--store-dir", type=Path)
    p.add_argument("--store-url", help=_STORE_URL_HELP)
    p.add_argument("--start-timeout", type=float, default=120.0)
    p.add_argument("--ready-file", help="write this file once both are ready (for scripts)")
    p.set_defaults(func=_up)

    p = sub.add_parser("render",
                       help="render TEMPLATE.docx with DATA.json through a running service")
    p.add_argument("template")
    p.add_argument("data", help="JSON file, or - for standard input")
    p.add_argument("-o", "--output", help="output file (.pdf or .docx)")
    p.add_argument("--format", choices=["pdf", "docx"])
    p.add_argument("--strict", action="store_true", help="422 on undefined variables")
    p.add_argument("--locale", help="locale of the format_* filters, e.g. de_DE "
                   "(default: the service's GENDOC_DEFAULT_LOCALE)")
    p.add_argument("--timezone", help="IANA time zone of format_datetime/format_time, "
                   "e.g. Europe/Berlin (default: the service's GENDOC_DEFAULT_TIMEZONE)")
    p.add_argument("--url", default=ClientSettings().url,
                   help="the service (GENDOC_URL; default http://127.0.0.1:8080)")
    p.add_argument("--timeout", type=float, default=60.0)
    p.set_defaults(func=_render)

    from gendoc import jobclient

    jobclient.add_parser(sub, ClientSettings().url)

    # Listed for --help; `main` hands its arguments to the suite's own parser.
    sub.add_parser("bench", help="load benchmark, baselines in the same run: "
                   "`gendoc bench [stack|converter|jobs|report] --help`")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:
        return _bench(argv[1:])
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)
