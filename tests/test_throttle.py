"""The channels' shared send rates, counted in a real Redis."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
import redis

from postroom.embedded.redis import RedisProcess
from postroom.jobs.throttle import ChannelThrottle, ChannelThrottled


def test_threads_together_send_no_faster_than_the_limit(redis_server: RedisProcess) -> None:
    client = redis.Redis.from_url(redis_server.url)
    channel = f"email-{uuid.uuid4().hex[:6]}"
    throttle = ChannelThrottle(client, {channel: 5}, max_wait_seconds=10)
    sent: list[float] = []
    lock = threading.Lock()

    def send(count: int) -> None:
        for _ in range(count):
            throttle.wait(channel)
            with lock:
                sent.append(time.time())

    workers = [threading.Thread(target=send, args=(4,)) for _ in range(4)]
    started = time.time()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(sent) == 16
    # The limiter counts per clock second: 16 sends at 5 a second need four seconds' counts, so
    # the last starts at least three clock seconds after the first second began. (Counting per
    # second here would be fragile: a send is counted when its slot is taken, recorded later.)
    assert max(sent) - started > 2.0


def test_a_channel_full_for_too_long_is_retried_later_and_others_pass(redis_server: RedisProcess) -> None:
    client = redis.Redis.from_url(redis_server.url)
    channel = f"eletter-{uuid.uuid4().hex[:6]}"
    throttle = ChannelThrottle(client, {channel: 1}, max_wait_seconds=0)
    while True:  # start at the beginning of a second, so both attempts fall into the same one
        if time.time() % 1 < 0.5:
            break
        time.sleep(0.05)
    throttle.wait(channel)
    with pytest.raises(ChannelThrottled) as raised:
        throttle.wait(channel)
    assert raised.value.retry_after == 1.0
    throttle.wait("archive")  # not limited


def test_without_redis_nothing_is_limited() -> None:
    throttle = ChannelThrottle(None, {"email": 1}, max_wait_seconds=0)
    for _ in range(3):
        throttle.wait("email")
