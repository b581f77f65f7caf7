"""Build an example's image on a machine that cannot pull from Docker Hub.

    .venv/bin/python examples/build.py notebook        # or: examples/notebook/build.sh

Each example's ``Dockerfile`` is written for where images can be pulled: its first lines make a base
(``FROM python:3.11-slim`` plus ``pip install nuvla-api``, or ``FROM busybox``), and the line
``# -- the example --`` starts the example's own steps. Here the base comes from the test suite's local
images (``tests/support/images.py``: Debian's busybox-static, or a debootstrapped Debian with Python 3.11 and
``nuvla-api`` 4.2.3, built once in a few minutes and then kept by tag), and the example's steps below the
marker are built on it unchanged, so both recipes give the same image.

The result is tagged as the example's ``app.yaml`` names it. The build is skipped when an image with that
tag was built from the same files (their digest is a label of the image); ``--rebuild`` forces it.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import sys
import tarfile

import docker
import yaml

HERE = os.path.dirname(os.path.realpath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # the repository root, for tests.support.images

from tests.support import images  # noqa: E402  (after the path is set)

MARKER = "# -- the example --"
DIGEST_LABEL = "dockyard.example-digest"
BASES = {"python": images.python_image, "busybox": images.busybox_image}


def image_tag(example: str) -> str:
    """``repository/image-name:tag`` as the example's app.yaml names its image (without a registry)."""
    with open(os.path.join(HERE, example, "app.yaml"), encoding="utf-8") as handle:
        image = yaml.safe_load(handle)["content"]["image"]
    name = "/".join(p for p in (image.get("repository"), image["image-name"]) if p)
    return f"{name}:{image.get('tag', 'latest')}"


def base_kind(dockerfile: str) -> str:
    """Which local base stands for the Dockerfile's: a Python image, or busybox."""
    first = next(line for line in dockerfile.splitlines() if line.startswith("FROM "))
    return "python" if "python" in first else "busybox"


def example_steps(dockerfile: str) -> str:
    """The Dockerfile's lines after the marker: the example's own steps."""
    head, found, steps = dockerfile.partition(MARKER)
    if not found:
        raise SystemExit(f"the Dockerfile has no line '{MARKER}' separating the base from the example")
    return steps


def context_files(example: str) -> dict[str, bytes]:
    """The example's folder as a build context, without the Dockerfile, build scripts and docs."""
    folder = os.path.join(HERE, example)
    skip = {"Dockerfile", "build.sh", "README.md", "app.yaml"}
    files = {}
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if name not in skip and os.path.isfile(path):
            with open(path, "rb") as handle:
                files[name] = handle.read()
    return files


def build(client: docker.DockerClient, example: str, rebuild: bool = False, say=print) -> str:
    """Build ``example`` here (skipped when its tag holds the same files) and return its tag."""
    with open(os.path.join(HERE, example, "Dockerfile"), encoding="utf-8") as handle:
        dockerfile = handle.read()
    tag = image_tag(example)
    base = BASES[base_kind(dockerfile)](client)
    local = f"FROM {base}\n{example_steps(dockerfile)}".encode()
    files = {"Dockerfile": local, **context_files(example)}
    digest = hashlib.sha256(b"".join(k.encode() + b"\0" + v + b"\0" for k, v in files.items())).hexdigest()
    if not rebuild and _label(client, tag) == digest:
        say(f"{tag} is up to date")
        return tag
    say(f"building {tag} on {base}")
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755 if data.startswith(b"#!") else 0o644
            tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    client.images.build(fileobj=context, custom_context=True, tag=tag, rm=True, forcerm=True,
                        labels={DIGEST_LABEL: digest, **images.IMAGE_LABELS})
    say(f"built {tag}")
    return tag


def _label(client: docker.DockerClient, tag: str) -> str | None:
    try:
        return (client.images.get(tag).labels or {}).get(DIGEST_LABEL)
    except docker.errors.ImageNotFound:
        return None


def main(argv: list[str] | None = None) -> None:
    examples = sorted(n for n in os.listdir(HERE) if os.path.isfile(os.path.join(HERE, n, "Dockerfile")))
    parser = argparse.ArgumentParser(description="Build an example's image from local bases.")
    parser.add_argument("example", choices=examples)
    parser.add_argument("--rebuild", action="store_true", help="build even if the tag is up to date")
    args = parser.parse_args(argv)
    client = docker.from_env()
    try:
        build(client, args.example, args.rebuild)
    finally:
        client.close()


if __name__ == "__main__":
    main()
