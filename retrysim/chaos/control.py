"""Named fault proxies driven through Toxiproxy's API: the logic of ``retrysim proxy serve``.

Why it exists: Toxiproxy's clients and the scripts written for them (toxiproxy-cli, the Go,
Ruby and Python clients, a CI job's ``curl`` lines) drive a proxy through its HTTP API. Answering
that API, with its paths, status codes and JSON, for the toxics retrysim's proxy shares with it
(latency, bandwidth, reset_peer, timeout with ``timeout = 0``, slicer, slow_close, limit_data;
and retrysim's own packet_loss, first_n and every_nth, ``retrysim.chaos.toxiproxy_json``) lets
them drive :class:`~retrysim.chaos.proxy.FaultProxy` unchanged. This module is that API without
HTTP: :meth:`ControlApi.handle` takes a method, a path and a body and returns the status and
JSON Toxiproxy 2.x would (``retrysim.chaos.control_http`` carries it over HTTP), so it can be
tested and reused without a socket.

Each named proxy is a ``FaultProxy`` while it is enabled and nothing while it is not (disabling
closes its connections and stops its listening, as Toxiproxy does). A toxic added, changed or
removed at runtime reaches the running proxy through ``FaultProxy.set_toxics``: new connections
and the next chunk of an open one see it at once. Toxic JSON is in Toxiproxy's units both ways
(milliseconds, KB/s); ``from_toxiproxy`` converts it. Listen addresses are 127.0.0.1 (or
``localhost``) only and upstreams loopback only: the proxy refuses anything else.

Extension: a proxy in a ``/populate`` body may hold a ``toxics`` list (Toxiproxy's toxic JSON);
the proxy's toxics become exactly those (``retrysim scenarios export --to toxiproxy`` writes it).
A listen port of 0 matches whatever port a proxy of that name already has, so populating the
same file twice leaves the proxies alone, as Toxiproxy promises for fixed ports.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn
from urllib.parse import unquote

from retrysim.chaos.listener import LISTEN_HOST
from retrysim.chaos.proxy import FaultProxy, loopback_host
from retrysim.chaos.toxics import STREAMS, ChaosError, Toxic
from retrysim.chaos.toxiproxy_json import from_toxiproxy, to_toxiproxy

#: What Toxiproxy answers when a toxic's stream is neither direction.
BAD_STREAM = "stream was invalid, can be either upstream or downstream"


class ApiError(Exception):
    """An answer other than success: Toxiproxy's ``{"error": message, "status": code}``."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        #: For /populate: the proxies made before the one that failed (None: not populating).
        self.done: list[NamedProxy] | None = None

    def payload(self) -> dict[str, Any]:
        return {"error": self.message, "status": self.status}


def _bad_body(detail: str) -> NoReturn:
    raise ApiError(f"bad request body: {detail}", 400)


@dataclass(frozen=True)
class Reply:
    """One answer: an HTTP status and its JSON body (None: no body, as for 204)."""

    status: int
    body: Any = None


@dataclass
class NamedToxic:
    """A toxic as the API shows it (Toxiproxy's fields and units) and as the proxy runs it."""

    name: str
    type: str
    stream: str
    toxicity: float
    attributes: dict[str, Any]
    toxic: Toxic

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": _number(self.toxicity),
            "attributes": dict(self.attributes),
        }


@dataclass
class NamedProxy:
    """One proxy of the API: its addresses, its toxics, and its FaultProxy while enabled."""

    name: str
    port: int  # on 127.0.0.1; 0 until it first listens on a port of its choosing
    upstream_text: str  # as given, as Toxiproxy shows it
    upstream: tuple[str, int]
    enabled: bool
    toxics: dict[str, NamedToxic] = field(default_factory=dict)
    running: FaultProxy | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "listen": f"{LISTEN_HOST}:{self.port}",
            "upstream": self.upstream_text,
            "enabled": self.enabled,
            "toxics": [toxic.as_json() for toxic in self.toxics.values()],
        }


# --- reading the JSON ------------------------------------------------------------------------


def _json_body(body: bytes) -> Any:
    if not body.strip():
        _bad_body("EOF")
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        _bad_body(" ".join(str(error).split()))


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        _bad_body(f"{what} must be a JSON object")
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _number(value: float) -> int | float:
    """A JSON number as Toxiproxy writes its integer fields: ``100``, not ``100.0``."""
    rounded = round(float(value), 9)
    return int(rounded) if rounded.is_integer() and abs(rounded) < 2**53 else rounded


def _split(text: Any, what: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[V6]:PORT`` as (host, port), or a 400 naming ``what``."""
    if not isinstance(text, str):
        _bad_body(f"{what} must be a string HOST:PORT")
    host, colon, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not colon or not port.isascii() or not port.isdigit() or int(port) > 65535:
        raise ApiError(f"{what} {text!r}: expected HOST:PORT with a port in 0..65535", 400)
    return host, int(port)


def parse_listen(text: Any) -> int:
    """The port of a ``listen`` address (None or empty: a free port), 127.0.0.1 only."""
    if text is None or text == "":
        return 0
    host, port = _split(text, "listen")
    if host not in (LISTEN_HOST, "localhost"):
        raise ApiError(
            f"listen {text!r}: the proxy listens on 127.0.0.1 only "
            "(give 127.0.0.1:PORT or localhost:PORT; port 0 picks a free one)",
            400,
        )
    return port


def parse_upstream(text: Any) -> tuple[str, int]:
    """A loopback ``upstream`` as (host, port), or a 400 saying why not."""
    host, port = _split(text, "upstream")
    if port == 0:
        raise ApiError(f"upstream {text!r}: the port must be in 1..65535", 400)
    try:
        return loopback_host(host), port
    except ChaosError as error:
        raise ApiError(str(error), 400) from None


def _shown_attributes(toxic: Toxic) -> dict[str, Any]:
    """Every attribute of ``toxic`` in Toxiproxy's units, read back from the toxic itself (so
    the API shows what the proxy applies, defaults included, as Toxiproxy shows them)."""
    attributes: dict[str, Any] = to_toxiproxy(toxic)["attributes"]
    return {key: _number(value) for key, value in attributes.items()}


def make_toxic(
    data: Any, *, name: Any = None, attributes: Mapping[str, Any] | None = None
) -> NamedToxic:
    """A toxic from Toxiproxy's JSON (``type``, ``stream``, ``toxicity``, ``attributes``,
    ``name``), with Toxiproxy's defaults (downstream, toxicity 1, name ``<type>_<stream>``)."""
    data = _object(data, "a toxic")
    kind = data.get("type")
    if not isinstance(kind, str) or not kind:
        raise ApiError("invalid toxic type", 400)
    stream = data.get("stream") or "downstream"
    if stream not in STREAMS:
        raise ApiError(BAD_STREAM, 400)
    if name is None:
        name = data.get("name") or f"{kind}_{stream}"
    if not isinstance(name, str):
        _bad_body("a toxic's name must be a string")
    toxicity = data.get("toxicity", 1.0)
    if not _is_number(toxicity) or not 0 <= toxicity <= 1:
        _bad_body(f"toxicity must be a number in [0, 1], not {toxicity!r}")
    if attributes is None:
        attributes = _object(data.get("attributes") or {}, "attributes")
    given = dict(attributes)
    for key, value in given.items():
        if not _is_number(value):
            _bad_body(f"attribute {key!r} of a {kind} toxic must be a number, not {value!r}")
    try:
        toxic = from_toxiproxy(
            {"type": kind, "stream": stream, "toxicity": toxicity, "attributes": given}
        )
    except (ChaosError, ValueError, TypeError) as error:
        raise ApiError(str(error), 400) from None
    shown = _shown_attributes(toxic)
    if unknown := sorted(set(given) - set(shown)):
        raise ApiError(
            f"a {kind} toxic has no attribute {unknown[0]!r} (it has {', '.join(shown)})", 400
        )
    return NamedToxic(name, kind, stream, float(toxicity), shown, toxic)


# --- the API ---------------------------------------------------------------------------------


def _version() -> str:
    """What ``GET /version`` says: retrysim's own version, as ``retrysim --version`` prints it."""
    from retrysim import __version__

    return f"retrysim-{__version__}"


class ControlApi:
    """The registry of named proxies and Toxiproxy's API over it (see the module).

    ``seed`` keys every proxy's random draws (toxicity); ``announce`` is told, in one line,
    each time a proxy starts listening or is disabled or deleted. Everything runs on one event
    loop; a lock keeps one request's changes whole while another waits.
    """

    def __init__(self, *, seed: int = 0, announce: Callable[[str], None] | None = None) -> None:
        self.seed = seed
        self.proxies: dict[str, NamedProxy] = {}
        self._announce = announce or (lambda line: None)
        self._lock = asyncio.Lock()

    async def handle(self, method: str, path: str, body: bytes = b"") -> Reply:
        """Answer one request as Toxiproxy's API does; errors as its ``{"error", "status"}``."""
        try:
            async with self._lock:
                return await self._route(method.upper(), path, body)
        except ApiError as error:
            return Reply(error.status, error.payload())

    async def _route(self, method: str, path: str, body: bytes) -> Reply:
        parts = [unquote(part) for part in path.split("?", 1)[0].split("/")[1:]]
        match method, parts:
            case "GET", ["version"]:
                return Reply(200, {"version": _version()})
            case "POST", ["reset"]:
                await self.reset()
                return Reply(204)
            case "GET", ["proxies"]:
                return Reply(200, {name: p.as_json() for name, p in self.proxies.items()})
            case "POST", ["proxies"]:
                return Reply(201, (await self.create(_json_body(body))).as_json())
            case "POST", ["populate"]:
                return await self._populate_reply(_json_body(body))
            case "GET", ["proxies", name]:
                return Reply(200, self.get(name).as_json())
            case "POST" | "PATCH", ["proxies", name]:
                return Reply(200, (await self.update(name, _json_body(body))).as_json())
            case "DELETE", ["proxies", name]:
                await self.delete(name)
                return Reply(204)
            case "GET", ["proxies", name, "toxics"]:
                return Reply(200, [t.as_json() for t in self.get(name).toxics.values()])
            case "POST", ["proxies", name, "toxics"]:
                return Reply(200, self.add_toxic(name, _json_body(body)).as_json())
            case "GET", ["proxies", name, "toxics", toxic]:
                return Reply(200, self._toxic(name, toxic).as_json())
            case "POST" | "PATCH", ["proxies", name, "toxics", toxic]:
                return Reply(200, self.update_toxic(name, toxic, _json_body(body)).as_json())
            case "DELETE", ["proxies", name, "toxics", toxic]:
                self.remove_toxic(name, toxic)
                return Reply(204)
        if _known_path(parts):
            raise ApiError(f"method {method} is not allowed on {path}", 405)
        raise ApiError(f"no such endpoint: {path}", 404)

    # --- proxies -----------------------------------------------------------------------------

    def get(self, name: str) -> NamedProxy:
        proxy = self.proxies.get(name)
        if proxy is None:
            raise ApiError("proxy not found", 404)
        return proxy

    async def create(self, data: Any) -> NamedProxy:
        """``POST /proxies``: a new proxy, listening at once unless ``enabled`` is false."""
        proxy = _new_proxy(_object(data, "a proxy"), "")
        if proxy.name in self.proxies:
            raise ApiError("proxy already exists", 409)
        if proxy.enabled:
            await self._start(proxy)
        self.proxies[proxy.name] = proxy
        return proxy

    async def update(self, name: str, data: Any) -> NamedProxy:
        """``POST /proxies/{proxy}``: a new listen or upstream restarts it (its connections
        dropped); ``enabled`` false closes its connections and stops its listening."""
        proxy = self.get(name)
        data = _object(data, "a proxy")
        enabled = data.get("enabled", proxy.enabled)
        if not isinstance(enabled, bool):
            _bad_body("enabled must be true or false")
        port = parse_listen(data["listen"]) if "listen" in data else proxy.port
        upstream_text = data.get("upstream", proxy.upstream_text)
        upstream = parse_upstream(upstream_text)
        if (port, upstream) != (proxy.port, proxy.upstream):
            await self._stop(proxy, None)
            proxy.port, proxy.upstream, proxy.upstream_text = port, upstream, upstream_text
            proxy.enabled = False
        if enabled and not proxy.enabled:
            await self._start(proxy)
        elif not enabled and proxy.enabled:
            await self._stop(proxy, "disabled: its connections closed, not listening")
        proxy.enabled = enabled
        return proxy

    async def delete(self, name: str) -> None:
        await self._stop(self.get(name), "deleted")
        del self.proxies[name]

    async def populate(self, data: Any) -> list[NamedProxy]:
        """``POST /populate``: create each proxy, or replace the one of its name whose listen
        or upstream differs; all are checked before any changes (see the module for
        ``toxics``). A proxy that fails to listen ends it: an ApiError whose ``done`` holds
        the proxies made before it."""
        if not isinstance(data, list):
            _bad_body("/populate takes a JSON array of proxies")
        wanted: list[tuple[NamedProxy, bool]] = []
        for index, item in enumerate(data, 1):
            proxy = _new_proxy(_object(item, f"proxy {index}"), f" at proxy {index}")
            wanted.append((proxy, item.get("toxics") is not None))
        done: list[NamedProxy] = []
        for proxy, with_toxics in wanted:
            try:
                done.append(await self._put(proxy, with_toxics))
            except ApiError as error:
                error.done = done
                raise
        return done

    async def _populate_reply(self, data: Any) -> Reply:
        try:
            done = await self.populate(data)
        except ApiError as error:  # as Toxiproxy: the error beside the proxies made before it
            shown = [proxy.as_json() for proxy in error.done or []]
            return Reply(error.status, {**error.payload(), "proxies": shown})
        return Reply(201, {"proxies": [proxy.as_json() for proxy in done]})

    async def _put(self, proxy: NamedProxy, with_toxics: bool) -> NamedProxy:
        existing = self.proxies.get(proxy.name)
        if existing is not None:
            same_port = proxy.port in (0, existing.port)
            if same_port and proxy.upstream == existing.upstream:
                if with_toxics:
                    existing.toxics = proxy.toxics
                    self._changed(existing)
                return existing
            await self._stop(existing, "replaced")
            del self.proxies[proxy.name]
        if proxy.enabled:
            await self._start(proxy)
        self.proxies[proxy.name] = proxy
        return proxy

    async def reset(self) -> None:
        """``POST /reset``: every proxy enabled, every toxic removed."""
        for proxy in self.proxies.values():
            proxy.toxics = {}
            self._changed(proxy)
            if not proxy.enabled:
                await self._start(proxy)
                proxy.enabled = True

    async def close(self) -> None:
        """Stop every proxy (the server is shutting down); the registry keeps their names."""
        for proxy in self.proxies.values():
            await self._stop(proxy, None)

    async def _start(self, proxy: NamedProxy) -> None:
        toxics = [toxic.toxic for toxic in proxy.toxics.values()]
        running = FaultProxy(proxy.upstream, toxics, self.seed, port=proxy.port)
        try:
            await running.start()
        except OSError as error:
            raise ApiError(
                f"listen {LISTEN_HOST}:{proxy.port}: {error.strerror or error}", 500
            ) from None
        proxy.running, proxy.port = running, running.port
        self._announce(
            f"proxy {proxy.name}: listening on {LISTEN_HOST}:{proxy.port}, "
            f"forwarding to {proxy.upstream_text}"
        )

    async def _stop(self, proxy: NamedProxy, said: str | None) -> None:
        running, proxy.running = proxy.running, None
        if running is not None:
            await running.stop()
            if said is not None:
                self._announce(f"proxy {proxy.name}: {said}")

    # --- toxics ------------------------------------------------------------------------------

    def _toxic(self, proxy_name: str, name: str) -> NamedToxic:
        toxic = self.get(proxy_name).toxics.get(name)
        if toxic is None:
            raise ApiError("toxic not found", 404)
        return toxic

    def add_toxic(self, proxy_name: str, data: Any) -> NamedToxic:
        """``POST /proxies/{proxy}/toxics``: the running proxy applies it at once."""
        proxy = self.get(proxy_name)
        toxic = make_toxic(data)
        if toxic.name in proxy.toxics:
            raise ApiError("toxic already exists", 409)
        proxy.toxics[toxic.name] = toxic
        self._changed(proxy)
        return toxic

    def update_toxic(self, proxy_name: str, name: str, data: Any) -> NamedToxic:
        """``POST /proxies/{proxy}/toxics/{toxic}``: new ``attributes`` (merged over the
        old) and ``toxicity``; its name, type and stream stay."""
        old = self._toxic(proxy_name, name)
        data = _object(data, "a toxic")
        changes = _object(data.get("attributes") or {}, "attributes")
        merged = {
            "type": old.type,
            "stream": old.stream,
            "toxicity": data.get("toxicity", old.toxicity),
        }
        toxic = make_toxic(merged, name=name, attributes={**old.attributes, **changes})
        proxy = self.get(proxy_name)
        proxy.toxics[name] = toxic
        self._changed(proxy)
        return toxic

    def remove_toxic(self, proxy_name: str, name: str) -> None:
        self._toxic(proxy_name, name)
        proxy = self.get(proxy_name)
        del proxy.toxics[name]
        self._changed(proxy)

    def _changed(self, proxy: NamedProxy) -> None:
        if proxy.running is not None:
            proxy.running.set_toxics([toxic.toxic for toxic in proxy.toxics.values()])


def _new_proxy(data: Mapping[str, Any], where: str) -> NamedProxy:
    """A proxy from its JSON, checked (Toxiproxy's "missing required field" errors)."""
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise ApiError(f"missing required field: name{where}", 400)
    if not data.get("upstream"):
        raise ApiError(f"missing required field: upstream{where}", 400)
    enabled = data.get("enabled", True)
    if enabled is None:
        enabled = True
    if not isinstance(enabled, bool):
        _bad_body(f"enabled must be true or false{where}")
    proxy = NamedProxy(
        name=name,
        port=parse_listen(data.get("listen")),
        upstream_text=data["upstream"],
        upstream=parse_upstream(data["upstream"]),
        enabled=enabled,
    )
    toxics = data.get("toxics") or []
    if not isinstance(toxics, list):
        _bad_body(f"toxics must be a JSON array{where}")
    for item in toxics:
        toxic = make_toxic(item)
        if toxic.name in proxy.toxics:
            raise ApiError(f"toxic already exists: {toxic.name}{where}", 409)
        proxy.toxics[toxic.name] = toxic
    return proxy


def _known_path(parts: list[str]) -> bool:
    """Whether ``parts`` is one of the API's paths (then a wrong method is a 405)."""
    fixed = {("version",), ("reset",), ("proxies",), ("populate",)}
    if tuple(parts) in fixed:
        return True
    return len(parts) in (2, 3, 4) and parts[0] == "proxies" and parts[2:3] in ([], ["toxics"])
