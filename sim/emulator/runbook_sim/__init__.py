"""runbook's extension of moto for the DR simulation.

install() patches the pinned moto (see sim/requirements.txt) with what the DR runbooks
need and moto lacks or models unrealistically; app() returns moto's server WSGI app
wrapped with the /_sim/ control API. Each patch module documents what it adds.
"""

import importlib

# Patch modules, applied in order. Each exposes install() -> None.
PATCHES = ["aurora", "ecs", "elbv2", "route53", "route53routing", "arc", "iot", "cloudfront", "autoscaling", "s3replication", "s3batch", "s3conditional", "hooks"]

_installed = False


def install():
    global _installed
    if _installed:
        return list(PATCHES)
    for name in PATCHES:
        importlib.import_module(f"{__name__}.{name}").install()
    _installed = True
    return list(PATCHES)


def app():
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        create_backend_app,
    )

    from .arc import ArcMiddleware
    from .control import ControlMiddleware
    from .rpcv2cbor import RpcV2CborMiddleware

    patches = install() + ["rpcv2cbor"]
    return ControlMiddleware(ArcMiddleware(RpcV2CborMiddleware(DomainDispatcherApplication(create_backend_app))), patches)
