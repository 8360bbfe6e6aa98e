"""Entry module for ``dramatiq postroom.jobs.worker``: logging first, then the actors."""

from postroom.log import configure_logging
from postroom.settings import get_settings

_settings = get_settings()
configure_logging(_settings.log_level, json=_settings.log_json)

import os  # noqa: E402

from postroom.jobs.actors import broker, deliver, notify_callback, render_document  # noqa: E402

if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # set by `postroom worker` unless metrics are turned off
    from dramatiq.middleware.prometheus import Prometheus

    broker.add_middleware(Prometheus())

__all__ = ["broker", "deliver", "notify_callback", "render_document"]
