"""``retrysim proxy``: the fault proxy as a standalone process, driven as Toxiproxy is.

``serve`` runs named proxies and the control API (``retrysim.chaos.control_http``); the other
commands are a small client of that API (or of a real Toxiproxy: the API is the same), over
urllib. ``--api`` defaults to ``TOXIPROXY_URL`` when it is set, as toxiproxy-cli's ``--host``.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from retrysim.cli.exits import UsageError, reports_errors, stopped_by
from retrysim.cli.help import CONTEXT_SETTINGS, Command, Group
from retrysim.safe import visible

proxy_app = typer.Typer(
    help="Run the fault proxy on its own with Toxiproxy's HTTP API, and drive it.",
    no_args_is_help=True,
    cls=Group,
    context_settings=CONTEXT_SETTINGS,
)
toxic_app = typer.Typer(
    help="Add, remove and list a proxy's toxics (Toxiproxy's units: ms, KB/s).",
    no_args_is_help=True,
    cls=Group,
    context_settings=CONTEXT_SETTINGS,
)
proxy_app.add_typer(toxic_app, name="toxic")

DEFAULT_API = "127.0.0.1:8474"
#: Seconds a client command waits for the API's answer.
CLIENT_TIMEOUT = 10.0

ApiOption = Annotated[
    str,
    typer.Option(
        "--api",
        envvar="TOXIPROXY_URL",
        help="The control API: HOST:PORT or http://HOST:PORT (env TOXIPROXY_URL).",
        metavar="HOST:PORT",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the API's JSON.")]
ProxyName = Annotated[str, typer.Argument(help="The proxy's name.", metavar="PROXY")]


def api_address(text: str) -> tuple[str, int]:
    """``--api`` as (host, port): ``HOST:PORT`` or ``http://HOST:PORT``."""
    bare = text.removeprefix("http://").rstrip("/")
    host, colon, port = bare.rpartition(":")
    if not colon or not host or not port.isascii() or not port.isdigit() or int(port) > 65535:
        raise UsageError(
            f"--api (or TOXIPROXY_URL) {text!r}: expected HOST:PORT or http://HOST:PORT"
        )
    return host.strip("[]"), int(port)


# --- serve -----------------------------------------------------------------------------------


@proxy_app.command("serve", cls=Command)
@reports_errors
def serve(
    api: ApiOption = DEFAULT_API,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Proxies to create at start: a JSON array as Toxiproxy's /populate takes "
            "(each may hold a 'toxics' list).",
            metavar="FILE",
        ),
    ] = None,
    seed: Annotated[
        int,
        typer.Option(
            "--seed",
            min=0,
            metavar="N",
            help="Seed of every toxic's draws (toxicity, jitter, packet loss, slices): the same "
            "seed and the same connections in the same order make the same decisions.",
        ),
    ] = 0,
) -> None:
    """Run named fault proxies and Toxiproxy's HTTP API on 127.0.0.1 until Ctrl-C or SIGTERM.

    Toxiproxy's clients, toxiproxy-cli and scripts drive it unchanged for the toxics it
    shares (latency, bandwidth, reset_peer, timeout=0, slicer, slow_close, limit_data);
    `retrysim proxy toxic add` is a client too. Prints a line for the API and one per proxy
    it listens on.
    """
    import asyncio

    from retrysim.chaos.control_http import serve as serve_api

    host, port = api_address(api)
    if host not in ("127.0.0.1", "localhost"):
        raise UsageError(f"--api {api!r}: the API listens on 127.0.0.1 only")
    proxies = None if config is None else _read_config(config)

    def announce(line: str) -> None:
        print(visible(line), flush=True)

    caught = asyncio.run(serve_api(port, proxies, announce=announce, seed=seed, where=str(config)))
    if caught is not None:
        raise stopped_by(caught)


def _read_config(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except ValueError as error:
        raise UsageError(f"{path}: not JSON ({error})") from None


# --- the client commands ---------------------------------------------------------------------


def _path(*parts: str) -> str:
    """An API path from its segments, each quoted whole (a name may hold a '/')."""
    from urllib.parse import quote

    return "".join("/" + quote(part, safe="") for part in parts)


def call(api: str, method: str, path: str, body: Any = None) -> Any:
    """One request to the API; its JSON answer, or a UsageError with the API's one line."""
    import urllib.error
    import urllib.request

    host, port = api_address(api)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}{path}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    request.add_header("User-Agent", "retrysim-proxy")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
    try:
        with opener.open(request, timeout=CLIENT_TIMEOUT) as response:
            raw = response.read()
    except urllib.error.HTTPError as error:
        raise UsageError(f"{method} {path}: {error.code} {_said(error.read())}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise UsageError(
            f"no proxy API at {url}: {reason} (start one: retrysim proxy serve)"
        ) from None
    return json.loads(raw) if raw.strip() else None


def _said(raw: bytes) -> str:
    """The message of an error answer: its JSON ``error``, else its text."""
    text = raw.decode("utf-8", "replace").strip()
    try:
        said = json.loads(text)
    except ValueError:
        return " ".join(text.split()) or "(no message)"
    if isinstance(said, dict) and "error" in said:
        return " ".join(str(said["error"]).split())
    return text


def _echo(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


@proxy_app.command("list", cls=Command)
@reports_errors
def list_proxies(api: ApiOption = DEFAULT_API, as_json: JsonOption = False) -> None:
    """List the proxies: name, listen, upstream, enabled and toxics."""
    proxies = call(api, "GET", "/proxies")
    if as_json:
        _echo(proxies)
        return
    if not proxies:
        typer.echo("no proxies (create one: retrysim proxy create NAME --upstream HOST:PORT)")
        return
    rows = [("name", "listen", "upstream", "enabled", "toxics")]
    for name, proxy in sorted(proxies.items()):
        toxics = ", ".join(t["name"] for t in proxy.get("toxics") or []) or "none"
        rows.append(
            (name, proxy["listen"], proxy["upstream"], str(proxy["enabled"]).lower(), toxics)
        )
    _print_rows(rows)


def _print_rows(rows: Sequence[Sequence[str]]) -> None:
    cells = [[visible(str(cell)) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    for row in cells:
        typer.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


@proxy_app.command("create", cls=Command)
@reports_errors
def create(
    name: ProxyName,
    upstream: Annotated[
        str,
        typer.Option(
            "--upstream", "-u", help="The service: a loopback HOST:PORT.", metavar="HOST:PORT"
        ),
    ],
    listen: Annotated[
        str,
        typer.Option(
            "--listen", "-l", help="Where to listen (port 0: a free one).", metavar="HOST:PORT"
        ),
    ] = "127.0.0.1:0",
    api: ApiOption = DEFAULT_API,
) -> None:
    """Create a proxy and start it listening."""
    body = {"name": name, "upstream": upstream, "listen": listen, "enabled": True}
    made = call(api, "POST", "/proxies", body)
    typer.echo(
        visible(f"created proxy {name}: listening on {made['listen']}, forwarding to {upstream}")
    )


@proxy_app.command("delete", cls=Command)
@reports_errors
def delete(name: ProxyName, api: ApiOption = DEFAULT_API) -> None:
    """Delete a proxy: its connections are closed and it stops listening."""
    call(api, "DELETE", _path("proxies", name))
    typer.echo(visible(f"deleted proxy {name}"))


# --- toxics ----------------------------------------------------------------------------------


def _attributes(pairs: list[str]) -> dict[str, int | float]:
    attributes: dict[str, int | float] = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not equals or not key or not math.isfinite(number):
            raise UsageError(f"-a {pair!r}: expected KEY=NUMBER (latency=100)")
        attributes[key] = int(number) if number.is_integer() else number
    return attributes


@toxic_app.command("add", cls=Command)
@reports_errors
def add_toxic(
    proxy: ProxyName,
    kind: Annotated[
        str,
        typer.Option(
            "--type",
            "-t",
            help="latency, bandwidth, reset_peer, timeout (with timeout=0), or retrysim's "
            "packet_loss, first_n, every_nth.",
            metavar="TYPE",
        ),
    ],
    attribute: Annotated[
        list[str] | None,
        typer.Option(
            "--attribute",
            "-a",
            help="An attribute, in Toxiproxy's units (ms, KB/s); repeatable.",
            metavar="KEY=NUMBER",
        ),
    ] = None,
    stream: Annotated[
        str,
        typer.Option("--stream", help="upstream or downstream.", metavar="STREAM"),
    ] = "downstream",
    toxicity: Annotated[
        float,
        typer.Option(
            "--toxicity", help="The chance it applies to a connection, 0 to 1.", metavar="P"
        ),
    ] = 1.0,
    name: Annotated[
        str | None,
        typer.Option("--name", "-n", help="Its name (default TYPE_STREAM).", metavar="NAME"),
    ] = None,
    api: ApiOption = DEFAULT_API,
) -> None:
    """Add a toxic to a proxy; open and new connections see it at once."""
    body: dict[str, Any] = {
        "type": kind,
        "stream": stream,
        "toxicity": toxicity,
        "attributes": _attributes(attribute or []),
    }
    if name is not None:
        body["name"] = name
    made = call(api, "POST", _path("proxies", proxy, "toxics"), body)
    typer.echo(
        visible(f"added {made['stream']} {made['type']} toxic {made['name']!r} on proxy {proxy!r}")
    )


@toxic_app.command("remove", cls=Command)
@reports_errors
def remove_toxic(
    proxy: ProxyName,
    name: Annotated[str, typer.Argument(help="The toxic's name.", metavar="NAME")],
    api: ApiOption = DEFAULT_API,
) -> None:
    """Remove a toxic from a proxy."""
    call(api, "DELETE", _path("proxies", proxy, "toxics", name))
    typer.echo(visible(f"removed toxic {name!r} from proxy {proxy!r}"))


@toxic_app.command("list", cls=Command)
@reports_errors
def list_toxics(
    proxy: ProxyName, api: ApiOption = DEFAULT_API, as_json: JsonOption = False
) -> None:
    """List a proxy's toxics with their attributes."""
    toxics = call(api, "GET", _path("proxies", proxy, "toxics"))
    if as_json:
        _echo(toxics)
        return
    if not toxics:
        typer.echo(visible(f"proxy {proxy!r} has no toxics"))
        return
    rows = [("name", "type", "stream", "toxicity", "attributes")]
    for toxic in toxics:
        attributes = " ".join(f"{k}={v}" for k, v in (toxic.get("attributes") or {}).items())
        rows.append(
            (toxic["name"], toxic["type"], toxic["stream"], str(toxic["toxicity"]), attributes)
        )
    _print_rows(rows)
