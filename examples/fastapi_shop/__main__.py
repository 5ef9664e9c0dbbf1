"""``python -m examples.fastapi_shop``: run the shop with uvicorn.

``SHOP_MODE=fake`` (the default) serves fake Kakao Pay, Naver Pay and Toss Payments on a
loopback port and adds a ``/demo`` page to take them down; ``SHOP_MODE=live`` uses the real
providers whose credentials are in the environment (``examples/README.md``).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import uvicorn

from payfallback import ConfigurationError

from .app import create_app
from .fakes import FakeBackends
from .settings import live_providers, settings_from_env


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.fastapi_shop", description=__doc__)
    parser.add_argument("--host", default=os.environ.get("SHOP_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("SHOP_PORT", "8000")))
    args = parser.parse_args(argv)
    mode = os.environ.get("SHOP_MODE", "fake")
    if mode not in ("fake", "live"):
        print(f"SHOP_MODE must be 'fake' or 'live', not {mode!r}", file=sys.stderr)
        return 2
    settings = settings_from_env(fake=mode == "fake")
    if mode == "live":
        try:
            providers = live_providers()
        except ConfigurationError as exc:
            print(exc, file=sys.stderr)
            return 2
        uvicorn.run(create_app(settings, providers), host=args.host, port=args.port)
        return 0
    with FakeBackends() as fakes:
        print(f"fake providers at {fakes.server.url}; the shop at http://{args.host}:{args.port}/")
        print(f"take one down at http://{args.host}:{args.port}/demo")
        app = create_app(settings, fakes.providers, demo=fakes)
        uvicorn.run(app, host=args.host, port=args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
