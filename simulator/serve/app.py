"""The HTTP side: routes of the scale-set REST API on Starlette, served by uvicorn.

Handlers are `async` but never await while they touch the engine, so requests are applied
one at a time in the order they arrive: no lock, and no VM lost or made twice under load.
Paths match case-insensitively, as ARM's do. Every error, expected or not, leaves as an
ARM error body; an unexpected one is also logged, and the server keeps serving.
"""
from __future__ import annotations

import ipaddress
import logging
import re
import socket
from typing import Any, Awaitable, Callable
from urllib.parse import quote

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import arm
from .arm import ArmError, InstanceIdsBody, ScaleSetBody
from .clock import ManualClock
from .emulator import Emulator, ScaleSetResource
from .operations import Operation

log = logging.getLogger("simulator.serve")
#: Largest request body accepted: a scale-set body is a few KiB; ARM's own limit is 4 MiB.
MAX_BODY_BYTES = 1 << 20
Params = dict[str, str]
Handler = Callable[[Request, Emulator, Params], Awaitable[Response]]


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(body, status_code=status, headers=headers)


async def _read_body(request: Request, model: type[arm.B], version: str) -> arm.B:
    """The body, refused past MAX_BODY_BYTES whether or not Content-Length says so."""
    declared = request.headers.get("content-length", "")
    chunks, size = [], 0
    if not declared.isdigit() or int(declared) <= MAX_BODY_BYTES:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                break
            chunks.append(chunk)
    if size > MAX_BODY_BYTES or (declared.isdigit() and int(declared) > MAX_BODY_BYTES):
        raise ArmError(413, "RequestEntityTooLarge",
                       f"The request body is larger than {MAX_BODY_BYTES} bytes.")
    return arm.parse_body(model, b"".join(chunks), version)


def _operation_headers(request: Request, em: Emulator, res: ScaleSetResource, op: Operation,
                       version: str) -> dict[str, str]:
    """Where the SDK's poller asks: Azure-AsyncOperation (the status) and Location."""
    url = (f"{str(request.base_url).rstrip('/')}/subscriptions/{quote(res.sub)}/providers/"
           f"Microsoft.Compute/locations/{quote(op.location)}/operations/{op.id}"
           f"?api-version={version}")
    headers = {"Azure-AsyncOperation": url, "Location": f"{url}&monitor=true"}
    if em.clock.retry_after_s is not None:
        headers["Retry-After"] = str(em.clock.retry_after_s)
    return headers


# --- the emulator's own routes ------------------------------------------------------------------
async def get_clock(request: Request, em: Emulator, p: Params) -> Response:
    now = em.sync()
    return _json({"minute": now, "time": em.clock.timestamp(now), "manual": em.clock.manual,
                  "speed": getattr(em.clock, "speed", None)})


async def advance(request: Request, em: Emulator, p: Params) -> Response:
    if not isinstance(em.clock, ManualClock):
        raise ArmError(409, "ClockNotManual", "The clock runs by itself; start the emulator "
                                              "with --manual-clock to advance it by hand.")
    try:
        em.clock.advance(float(request.query_params.get("minutes", "")))
    except ValueError:
        raise arm.invalid_parameter("minutes", "Expected ?minutes=M, a finite number >= 0.") \
            from None
    return await get_clock(request, em, p)


# --- scale sets ---------------------------------------------------------------------------------
async def get_scale_set(request: Request, em: Emulator, p: Params) -> Response:
    version = arm.api_version(request.query_params)
    em.sync()
    res = em.scale_set(p["sub"], p["rg"], p["name"])
    return _json(arm.scale_set_json(res.view(em.clock), version))


async def put_scale_set(request: Request, em: Emulator, p: Params) -> Response:
    version = arm.api_version(request.query_params)
    body = await _read_body(request, ScaleSetBody, version)
    res, created, op = em.put(p["sub"], p["rg"], p["name"], body)
    return _json(arm.scale_set_json(res.view(em.clock), version), 201 if created else 200,
                 _operation_headers(request, em, res, op, version))


async def patch_scale_set(request: Request, em: Emulator, p: Params) -> Response:
    version = arm.api_version(request.query_params)
    body = await _read_body(request, ScaleSetBody, version)
    res = em.scale_set(p["sub"], p["rg"], p["name"])
    op = em.patch(res, body)  # 200, not 201/202: what the SDK's begin_update expects of PATCH
    return _json(arm.scale_set_json(res.view(em.clock), version), 200,
                 _operation_headers(request, em, res, op, version))


async def delete_instances(request: Request, em: Emulator, p: Params) -> Response:
    version = arm.api_version(request.query_params)
    _force_deletion(request)
    body = await _read_body(request, InstanceIdsBody, version)
    res = em.scale_set(p["sub"], p["rg"], p["name"])
    op = em.delete_vms(res, body.instanceIds)
    return Response(status_code=202, headers=_operation_headers(request, em, res, op, version))


# --- VMs ----------------------------------------------------------------------------------------
async def list_vms(request: Request, em: Emulator, p: Params) -> Response:
    version = arm.api_version(request.query_params)
    expand = arm.expands(request.query_params, version)
    em.sync()
    res = em.scale_set(p["sub"], p["rg"], p["name"])
    return _json({"value": [arm.vm_json(vm, res.id, res.location, version, expand,
                                        em.clock.timestamp) for vm in res.vms()]})


async def get_vm(request: Request, em: Emulator, p: Params) -> Response:
    version = arm.api_version(request.query_params)
    expand = arm.expands(request.query_params, version)
    em.sync()
    res = em.scale_set(p["sub"], p["rg"], p["name"])
    vm = res.vm(em.vm_index(res, p["vm"]))
    return _json(arm.vm_json(vm, res.id, res.location, version, expand, em.clock.timestamp))


async def delete_vm(request: Request, em: Emulator, p: Params) -> Response:
    version = arm.api_version(request.query_params)
    _force_deletion(request)
    res = em.scale_set(p["sub"], p["rg"], p["name"])
    op = em.delete_vms(res, [p["vm"]])
    return Response(status_code=202, headers=_operation_headers(request, em, res, op, version))


def _force_deletion(request: Request) -> None:
    """`forceDeletion` is accepted and checked; the engine has no separate forced delete."""
    if request.query_params.get("forceDeletion", "false").lower() not in ("true", "false"):
        raise arm.invalid_parameter("forceDeletion", "Expected forceDeletion=true or false.")


# --- long-running operations --------------------------------------------------------------------
async def get_operation(request: Request, em: Emulator, p: Params) -> Response:
    """Azure-AsyncOperation: the status resource. Location (`monitor=true`): 202 while in
    progress, then 200 (the SDK's final GET of a POST), or the error once Failed."""
    arm.api_version(request.query_params)
    em.sync()
    op = em.operations.get(p["op"])
    ts = em.clock.timestamp
    if request.query_params.get("monitor", "").lower() == "true":
        if not op.done:
            return Response(status_code=202, headers={"Location": str(request.url)})
        if op.error is not None:
            raise ArmError(409, *op.error)
        return Response(status_code=200)
    return _json(arm.operation_json(op.id, op.status, ts(op.start_min),
                                    None if op.end_min is None else ts(op.end_min), op.error))


_SCALE_SET = (r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/"
              r"Microsoft\.Compute/virtualMachineScaleSets/(?P<name>[^/]+)")
ROUTES: list[tuple[re.Pattern[str], dict[str, Handler]]] = [
    (re.compile(pattern, re.IGNORECASE), methods) for pattern, methods in (
        (r"/_emulator/clock", {"GET": get_clock}),
        (r"/_emulator/advance", {"POST": advance}),
        (_SCALE_SET, {"GET": get_scale_set, "PUT": put_scale_set, "PATCH": patch_scale_set}),
        (_SCALE_SET + "/delete", {"POST": delete_instances}),
        (_SCALE_SET + "/virtualMachines", {"GET": list_vms}),
        (_SCALE_SET + r"/virtualMachines/(?P<vm>[^/]+)", {"GET": get_vm, "DELETE": delete_vm}),
        (r"/subscriptions/(?P<sub>[^/]+)/providers/Microsoft\.Compute/locations/[^/]+/"
         r"operations/(?P<op>[^/]+)", {"GET": get_operation}),
    )]


def _route(method: str, path: str) -> tuple[Handler, Params]:
    for pattern, methods in ROUTES:
        match = pattern.fullmatch(path)
        if match:
            if method not in methods:
                raise ArmError(405, "MethodNotAllowed", f"The emulator does not serve {method} "
                                                        f"{path}; it serves {sorted(methods)}.")
            return methods[method], match.groupdict()
    raise ArmError(404, "NotFound", f"The emulator has no route for {method} {path}.")


def create_app(emulator: Emulator) -> Starlette:
    async def endpoint(request: Request) -> Response:
        try:
            handler, params = _route(request.method, request.url.path)
            return await handler(request, emulator, params)
        except ArmError as err:
            return _json(err.body(), err.status)
        except Exception as err:  # a bug must not take the server down: log it, answer 500
            log.exception("unhandled error in %s %s", request.method, request.url.path)
            return _json({"error": {"code": "InternalServerError",
                                    "message": f"The emulator failed: {type(err).__name__}"}},
                         500)

    methods = ["GET", "PUT", "PATCH", "POST", "DELETE", "HEAD", "OPTIONS"]
    return Starlette(routes=[Route("/{path:path}", endpoint, methods=methods)])


# --- serving ------------------------------------------------------------------------------------
def bind(host: str, port: int) -> socket.socket:
    """A socket listening on host:port (port 0: any free port), so the port can be announced
    and connections wait in the backlog until the server runs. The protocol is named so that
    asyncio turns Nagle's algorithm off on its connections (with proto 0 it does not, and a
    keep-alive request then waits ~40 ms for a delayed ACK)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    return sock


def make_server(emulator: Emulator, quiet: bool = False) -> uvicorn.Server:
    config = uvicorn.Config(create_app(emulator), lifespan="off", access_log=not quiet,
                            log_level="warning" if quiet else "info")
    return uvicorn.Server(config)


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def banner(emulator: Emulator, sock: socket.socket, scenario_name: str) -> str:
    """What `vmss-sim serve` says on startup: where it listens, and who can reach it."""
    host, port = sock.getsockname()[:2]
    url = f"http://{f'[{host}]' if ':' in host else host}:{port}"
    reach = ("loopback only: other machines cannot reach it; --host changes that"
             if is_loopback(host) else "WARNING: other machines can reach it, and it does not "
                                       "authenticate")
    clock = ("manual, it moves only on POST /_emulator/advance?minutes=M"
             if emulator.clock.manual else
             f"{getattr(emulator.clock, 'speed', 0):g} simulated minutes per real second")
    return (f"vmss-sim serve: emulating Microsoft.Compute/virtualMachineScaleSets\n"
            f"  listening on {url} ({reach})\n"
            f"  faults, timing and limits: {scenario_name}; seed {emulator.seed}\n"
            f"  clock: {clock}; GET {url}/_emulator/clock\n"
            f"  api-versions {arm.API_VERSIONS[0]} to {arm.API_VERSIONS[-1]} "
            f"(resiliencyPolicy from {arm.RESILIENCY_API_VERSION})")
