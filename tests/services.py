"""An S3 endpoint for the test suite (moto in server mode).

PostgreSQL, Redis and the SMTP sink come from :mod:`postroom.embedded`, shared with the demo and bench.
"""

from __future__ import annotations

import boto3
from moto.server import ThreadedMotoServer

from postroom.embedded.ports import free_port, wait_for_port

S3_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "eu-central-1",
}


class S3Server:
    """moto in server mode: a real HTTP S3 endpoint on a free loopback port."""

    def __init__(self) -> None:
        self.port = free_port()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> S3Server:
        """Serve in a background thread."""
        self._server.start()
        wait_for_port(self.port, timeout=15)
        return self

    def stop(self) -> None:
        """Stop serving."""
        self._server.stop()

    def create_bucket(self, name: str, *, object_lock: bool = True) -> None:
        """A bucket in eu-central-1, with Object Lock unless told otherwise."""
        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name="eu-central-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        client.create_bucket(
            Bucket=name,
            CreateBucketConfiguration={"LocationConstraint": "eu-central-1"},
            ObjectLockEnabledForBucket=object_lock,
        )
