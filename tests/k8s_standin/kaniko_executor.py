"""The stand-in's Kaniko executor: what ``gcr.io/kaniko-project/executor`` does, as far as a test can see.

It takes Kaniko's arguments (and refuses others), reads the build context from S3 as Kaniko does
(``AWS_*`` credentials, ``S3_ENDPOINT``, ``S3_FORCE_PATH_STYLE``), unpacks it without following paths
out of its folder, checks the Dockerfile, runs its ``RUN`` lines with ``/bin/sh`` in a scratch
folder (``pip install`` lines are only printed: nothing is installed on the test host), "pushes" the
destination, and writes the image's digest to ``--digest-file`` as Kaniko does (an absolute path is
re-rooted at the pod's folder, ``$HOME``, as the stand-in does with ``terminationMessagePath``). A failing ``RUN``
line ends it with Kaniko's error message and exit code 1. No image is built: Kaniko itself does not
run here.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path


def _args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="executor")
    parser.add_argument("--dockerfile", required=True)
    parser.add_argument("--context", required=True)
    parser.add_argument("--destination", required=True, action="append")
    parser.add_argument("--digest-file", required=True)
    parser.add_argument("--cleanup", action="store_true")
    return parser.parse_args(argv)


def _context(url: str) -> bytes:
    import boto3

    match = re.fullmatch(r"s3://([^/]+)/(.+)", url)
    if not match:
        raise SystemExit(f"error: --context {url!r} is not s3://bucket/key")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        if not os.environ.get(name):
            raise SystemExit(f"error: {name} is not set: the S3 context cannot be read")
    endpoint = os.environ.get("S3_ENDPOINT")
    if endpoint and os.environ.get("S3_FORCE_PATH_STYLE") != "true":
        raise SystemExit("error: S3_ENDPOINT without S3_FORCE_PATH_STYLE=true")
    client = boto3.client("s3", endpoint_url=endpoint or None, region_name=os.environ.get("AWS_REGION"))
    return bytes(client.get_object(Bucket=match.group(1), Key=match.group(2))["Body"].read())


def main(argv: list[str]) -> int:
    args = _args(argv)
    print(f"INFO[0000] Retrieving image manifest; context {args.context}", flush=True)
    data = _context(args.context)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "context"
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            tar.extractall(root, filter="data")  # refuses absolute paths and ../ escapes
        dockerfile = (root / args.dockerfile).read_text()
        steps = [line for line in dockerfile.splitlines() if line.strip() and not line.startswith("#")]
        if not steps or not steps[0].startswith("FROM "):
            print("error: the Dockerfile does not start with FROM", flush=True)
            return 1
        scratch = Path(tmp) / "rootfs"
        scratch.mkdir()
        for step in steps:
            print(f"INFO[0001] {step}", flush=True)
            if not step.startswith("RUN "):
                continue
            command = step.removeprefix("RUN ")
            if "pip install" in command:
                print("INFO[0001] (the stand-in installs nothing)", flush=True)
                continue
            done = subprocess.run(["/bin/sh", "-c", command], cwd=scratch, capture_output=True, text=True)
            sys.stdout.write(done.stdout + done.stderr)
            sys.stdout.flush()
            if done.returncode != 0:
                print(
                    "error building image: error building stage: failed to execute command: waiting for process "
                    f"to exit: exit status {done.returncode}",
                    flush=True,
                )
                return 1
    digest = "sha256:" + hashlib.sha256(data + "\n".join(args.destination).encode()).hexdigest()
    for destination in args.destination:
        print(f"INFO[0002] Pushing image to {destination}", flush=True)
        repository = destination.rsplit(":", 1)[0] if ":" in destination.rsplit("/", 1)[-1] else destination
        print(f"INFO[0002] Pushed {repository}@{digest}", flush=True)
    # As the stand-in re-roots terminationMessagePath at the pod's folder (its HOME), so does this.
    digest_file = Path(os.environ.get("HOME", "/")) / args.digest_file.lstrip("/")
    digest_file.parent.mkdir(parents=True, exist_ok=True)
    digest_file.write_text(digest)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
