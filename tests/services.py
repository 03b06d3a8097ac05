"""Make sure PostgreSQL and Redis answer before the tests run; start them if they are down."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import time


def _open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _wait(host: str, port: int, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _open(host, port):
            return True
        time.sleep(0.25)
    return False


def ensure_postgres(host: str = "127.0.0.1", port: int = 5432) -> None:
    if _open(host, port):
        return
    versions = sorted(os.path.basename(p) for p in glob.glob("/etc/postgresql/*"))
    if shutil.which("pg_ctlcluster") and versions:
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"],
            check=False,
        )
    if not _wait(host, port):
        raise RuntimeError(f"PostgreSQL is not answering on {host}:{port} and could not be started")


def ensure_redis(host: str = "127.0.0.1", port: int = 6379) -> None:
    if _open(host, port):
        return
    if shutil.which("redis-server"):
        subprocess.run(
            [
                "redis-server",
                "--daemonize",
                "yes",
                "--bind",
                host,
                "--port",
                str(port),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            check=False,
        )
    if not _wait(host, port):
        raise RuntimeError(f"Redis is not answering on {host}:{port} and could not be started")


if __name__ == "__main__":
    ensure_postgres()
    ensure_redis()
    print("postgresql and redis are up")
