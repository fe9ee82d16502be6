"""Mirror throughput vs. raw boto3 `upload_file` of the same files to the same S3 server, in one run.

Server: `rclone serve s3` on loopback (real files on disk). Files: real GGUF quants of the demo model (~330 MB).
Three rounds, alternating raw and mirror so machine noise hits both. The mirror's upload phase is timed with
the files already downloaded and verified in the local cache (the hub is a different network in real use);
the end-to-end mirror (hub stand-in download + verify + upload) is printed too. Then an up-to-date re-run is
counted request by request. Last line: mirror_ratio=<x> rerun_uploads=<n>  (ratio = raw time / mirror time;
goal >= 0.9).

Run: .venv/bin/python benchmarks/mirror.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from hf_hub_server import FakeHub, FakeRepo  # noqa: E402
from s3_servers import RcloneS3  # noqa: E402
from test_store import REPO_ID, CallCounter, make_test_ggufs, repo_files  # noqa: E402

from beyond_vibes.catalog import load_catalog  # noqa: E402
from beyond_vibes.settings import Settings  # noqa: E402
from beyond_vibes.store.cache import ModelCache  # noqa: E402
from beyond_vibes.store.hf import HuggingFace  # noqa: E402
from beyond_vibes.store.mirror import plan_mirror, run_mirror  # noqa: E402
from beyond_vibes.store.s3 import S3Store  # noqa: E402

BUCKET = "bench"


def empty(client) -> None:
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for obj in page.get("Contents", []):
            client.delete_object(Bucket=BUCKET, Key=obj["Key"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    files = make_test_ggufs()
    total = sum(p.stat().st_size for p in files.values())
    with tempfile.TemporaryDirectory(prefix="bv-bench-") as tmp, RcloneS3() as server, \
            FakeHub({REPO_ID: FakeRepo(repo_files(files), commit="c" * 40)}) as hub:
        tmp = Path(tmp)
        client = server.client()
        client.create_bucket(Bucket=BUCKET)
        catalog_file = tmp / "models.yaml"
        catalog_file.write_text(f"models: [{{name: smol, repo_id: {REPO_ID}, quant_tags: [Q4_0, Q8_0, Q4_1]}}]\n")
        env = {**server.env(BUCKET), "HF_ENDPOINT": hub.endpoint, "BV_MODEL_DIR": str(tmp / "models")}
        os.environ.update(env)
        settings = Settings()
        catalog = load_catalog(catalog_file)
        hf, cache = HuggingFace(settings), ModelCache(settings.model_dir)

        def mirror() -> tuple[float, CallCounter]:
            s3 = S3Store(settings)
            counter = CallCounter(s3)
            start = time.perf_counter()
            run_mirror(plan_mirror(catalog, hf, cache, s3), hf, cache, s3, show_progress=False)
            return time.perf_counter() - start, counter

        end_to_end, _ = mirror()  # also fills the local cache
        print(f"end-to-end mirror (hub stand-in download + verify + upload): {end_to_end:.2f} s, "
              f"{total / end_to_end / 1e6:.0f} MB/s")
        raw_times, mirror_times = [], []
        for _ in range(args.rounds):
            empty(client)
            start = time.perf_counter()
            for name, path in repo_files(files).items():
                if name.endswith(".gguf"):
                    client.upload_file(str(path), BUCKET, f"raw/{name}")
            raw_times.append(time.perf_counter() - start)
            empty(client)
            mirror_times.append(mirror()[0])
        raw, mirrored = statistics.median(raw_times), statistics.median(mirror_times)
        print(f"raw boto3 upload_file: {raw:.2f} s ({total / raw / 1e6:.0f} MB/s)   mirror upload: {mirrored:.2f} s "
              f"({total / mirrored / 1e6:.0f} MB/s)   {total / 1e6:.0f} MB, median of {args.rounds} "
              f"(raw {', '.join(f'{t:.2f}' for t in raw_times)} | mirror {', '.join(f'{t:.2f}' for t in mirror_times)})")
        _, counter = mirror()  # up to date now
        uploads = counter.count("PutObject", "CreateMultipartUpload", "UploadPart")
        print(f"up-to-date re-run: {len(counter.calls)} S3 requests ({', '.join(sorted(set(counter.calls)))}), "
              f"{counter.count('HeadObject')} HEAD for {len(files)} files, {uploads} uploads")
    print(f"mirror_ratio={raw / mirrored:.2f} rerun_uploads={uploads}")


if __name__ == "__main__":
    main()
