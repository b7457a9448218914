"""The gateway as a process of its own, for tests that kill it and start it again: the app that
`ivrgate serve` builds (api.commands.serve.server_config, settings from IVRGATE_... variables), with the
outbox sender running, on asyncio's loop.

    python -m tests.integration.sms_gateway.app_process
"""

from __future__ import annotations

import logging

import uvicorn

from api.app import create_app
from api.settings import Settings


def main() -> None:
    settings = Settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    app = create_app(settings, with_worker=False, with_callbacks=True)
    config = uvicorn.Config(app, host="127.0.0.1", port=settings.server.port, loop="asyncio", lifespan="on",
                            log_config=None, access_log=False)
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
