"""`pgpt-serve`: the model as a service on uvicorn (OpenAI- and PrivateGPT-compatible HTTP API)."""

from __future__ import annotations

import argparse
import socket
import sys
from typing import Any


def build_parser() -> argparse.ArgumentParser:
    """Options of pgpt-serve (no heavy imports: --help stays instant)."""
    from pgpt.serve.config import add_arguments

    parser = argparse.ArgumentParser(
        prog="pgpt-serve",
        description="Serve pgpt's chat model, embedder and document index over an OpenAI-compatible HTTP API. "
                    "Every option can also be set as a PGPT_ environment variable (PGPT_PORT, PGPT_API_KEY_FILE, "
                    "...) or in the .env file of the working folder (the environment wins).")
    add_arguments(parser)
    parser.add_argument("--provider", choices=("auto", "cpu", "cuda"), help="execution provider (default: PGPT_PROVIDER or auto)")
    from pgpt.runtime.arg_types import VersionAction

    parser.add_argument("--version", action=VersionAction)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of `pgpt-serve`; returns when the server stops (Ctrl+C or SIGTERM)."""
    from pgpt.runtime.sanitize import tolerant_streams
    from pgpt.runtime.telemetry import telemetry_off

    tolerant_streams()  # a latin-1 terminal: names it cannot show as escapes, not a crash
    telemetry_off()  # ONNX Runtime's usage events: none, before anything imports it
    args = build_parser().parse_args(argv)
    from pgpt.runtime.errors import user_message

    try:
        settings, serve = _settings(args)
        listener = _bind(serve.host, serve.port)
    except Exception as exc:  # one paragraph to stderr, never a traceback
        message = user_message(exc)
        print(message.line(), file=sys.stderr)
        return message.exit_code
    return _run(settings, serve, listener)


def _settings(args: argparse.Namespace) -> tuple[Any, Any]:
    import dataclasses
    import logging

    from pgpt.runtime.logs import setup_logging, warnings_to_stderr
    from pgpt.runtime.settings import Settings
    from pgpt.runtime.environment import read_environment
    from pgpt.runtime.errors import ConfigError
    from pgpt.serve.config import serve_settings

    env = read_environment()
    warnings = env.warnings()
    for warning in warnings:  # before a bad value stops the start: the misspelling may be why
        print(f"warning: {warning}", file=sys.stderr, flush=True)
    try:
        settings = dataclasses.replace(Settings.from_env(env.values), sources=env.sources())
        serve = serve_settings(args, env.values)
    except ConfigError as exc:
        raise env.explain(exc) from None
    if args.provider:
        settings = dataclasses.replace(settings, provider=args.provider)
    if serve.model:
        settings = dataclasses.replace(settings, model=serve.model)
    serve.check()
    from pgpt.runtime.storage_faults import require_writable

    # before the port is bound: the answer cache, uploads and the log live there (a read-only home
    # printed "listening on ..." and exited 3 a second later, its reason in a log it could not write)
    require_writable(settings.home, "PGPT_HOME")
    if serve.model:
        _check_model(settings, serve.model)
    setup_logging(settings)
    for warning in warnings:  # the log keeps them, for a server started by systemd (stderr has them: once, t49)
        logging.getLogger("pgpt.serve").warning("%s", warning)
    warnings_to_stderr("pgpt-serve")
    return settings, serve


def _check_model(settings: Any, name: str) -> None:
    """Refuse a --model / PGPT_MODEL that names no exported chat model before the port is bound:
    otherwise the server starts and only /ready and each request say why. The manifest is read,
    the model is not loaded (that stays lazy)."""
    from pgpt.runtime.errors import ConfigError, ModelNotFoundError, UsageError
    from pgpt.runtime.models import find_model, require_kind

    pick = ("Pick a chat model with --model NAME or PGPT_MODEL (`pgpt-tui models` lists them), or leave both "
            "unset to serve the active chat model.")
    try:
        require_kind(find_model(settings, name), "llm")
    except (ModelNotFoundError, UsageError) as exc:  # exit 2, not 1: the setting is wrong, not the model
        raise ConfigError(f"--model / PGPT_MODEL: {exc}", hint=pick) from None


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so that a taken port is a clear error, not a log line."""
    from pgpt.runtime.errors import ConfigError

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        import errno

        if exc.errno == errno.EADDRINUSE:
            hint = "Another program (maybe another pgpt-serve) uses that port: stop it or choose another with --port."
        elif exc.errno == errno.EACCES:
            hint = "Ports below 1024 need privileges: choose a port from 1024 with --port."
        else:  # a typo in --host / PGPT_HOST, or an address this machine no longer has (the port was free, t49)
            hint = (f"{host} is not an address of this machine: fix --host / PGPT_HOST (127.0.0.1 for this machine "
                    "alone, 0.0.0.0 for every address; `ip -brief address` lists its own).")
        raise ConfigError(f"Cannot listen on {host}:{port}: {exc.strerror}.", hint=hint) from None
    sock.set_inheritable(True)
    return sock


def _server_class() -> Any:
    import uvicorn

    class StoppingServer(uvicorn.Server):
        """uvicorn's server that, told to stop, first cuts the running answers: their streams end
        with a "Server stopping" error at once, and the process exits without waiting them out."""

        service: Any = None

        def handle_exit(self, sig: int, frame: Any) -> None:
            if self.service is not None:
                self.service.stop_answers()
            super().handle_exit(sig, frame)

    return StoppingServer


def _stop_on_hangup(server: Any) -> Any:
    """SIGHUP (the SSH session that started the server closed) stops the server as SIGTERM does:
    streams end with the "Server stopping" error, the log says so, the status file goes. By default
    it killed the process mid-stream without a word and left its status file (t49). A hangup
    ignored before the start (``nohup pgpt-serve``) stays ignored. The event says that it came."""
    import signal
    import threading

    hung_up = threading.Event()
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGHUP) is signal.SIG_DFL:
        def handler(signum: int, frame: Any) -> None:
            hung_up.set()
            server.handle_exit(signal.SIGTERM, frame)  # uvicorn raises SIGTERM again once stopped

        signal.signal(signal.SIGHUP, handler)
    return hung_up


def _run(settings: Any, serve: Any, listener: socket.socket) -> int:
    import logging

    import uvicorn

    from pgpt.serve.app import create_app
    from pgpt.serve.slow_clients import protocol_class

    app = create_app(settings, serve)
    shown = f"[{serve.host}]" if ":" in serve.host else serve.host
    print(f"pgpt-serve: listening on http://{shown}:{serve.port} (key {'required' if serve.api_key else 'off'}); "
          f"log: {settings.log_file}", file=sys.stderr, flush=True)
    names = serve.host_names()
    if not serve.loopback and names:  # which Host names pass the DNS-rebinding guard
        print(f"pgpt-serve: answers to Host {', '.join(sorted(names))}; add others (a DNS name of this "
              "machine, a proxy's) with --allowed-hosts", file=sys.stderr, flush=True)
    if not serve.loopback:  # the README said so, far down; an operator reads the start lines (t60)
        print("pgpt-serve: plain HTTP: the key, the questions and the documents cross the network unencrypted; "
              "across machines, put a TLS proxy in front (README: Running pgpt-serve on a server) or reach it "
              "through an SSH tunnel", file=sys.stderr, flush=True)
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on", server_header=False,
                            timeout_graceful_shutdown=10, http=protocol_class(serve.client_timeout_s))
    server = _server_class()(config)
    server.service = app.state.service
    from pgpt.runtime.signals import Terminated, terminate_as_interrupt

    # uvicorn restores the handlers it found and raises the signal it caught again once it has
    # stopped: SIGTERM (systemctl stop) then ended the process without the line Ctrl-C gives
    terminate_as_interrupt()
    hung_up = _stop_on_hangup(server)
    try:
        server.run(sockets=[listener])
    except SystemExit:  # uvicorn's exit 3: the app's start failed, said only in the log until now
        from pgpt.runtime.errors import user_message

        error = server.service.start_error
        message = user_message(error) if error is not None else None
        print(message.line() if message else "error: pgpt-serve could not start; the "
              f"log ({settings.log_file}) says why.", file=sys.stderr, flush=True)
        return message.exit_code if message else 1
    except KeyboardInterrupt as stop:  # uvicorn stops cleanly, then raises the Ctrl-C (or SIGTERM) again
        terminated = isinstance(stop, Terminated)
        why = "SIGHUP" if hung_up.is_set() else "SIGTERM" if terminated else "Ctrl-C"
        logging.getLogger("pgpt.serve").info("pgpt-serve stopped (%s)", why)
        print("pgpt-serve: stopped", file=sys.stderr, flush=True)
        if terminated:  # end by the signal, as before: systemd counts a stop by SIGTERM as clean, not exit 143
            import os
            import signal

            ended_by = signal.SIGHUP if hung_up.is_set() else signal.SIGTERM
            signal.signal(ended_by, signal.SIG_DFL)
            os.kill(os.getpid(), ended_by)
        return 130
    logging.getLogger("pgpt.serve").info("pgpt-serve stopped")
    return 0 if server.started else 1


if __name__ == "__main__":
    sys.exit(main())
