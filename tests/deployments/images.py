"""The apps the deployment tests launch, built on top of the locally built base images."""

from __future__ import annotations

import io
import os
import tarfile

import docker

from ..support.images import busybox_image, python_image

APP_TAG = "dockyard-test/app:2"
SEED_TAG = "dockyard-test/seed-notebook:2"
SEED_DIR = os.path.join(os.path.dirname(__file__), "seed")

# serves its environment on port 80, or exits after EXIT_AFTER seconds with EXIT_CODE
APP_RUN = b"""#!/bin/sh
mkdir -p /www
env > /www/index.html
echo "app of $NUVLA_DEPLOYMENT_ID starting"
if [ -n "$EXIT_AFTER" ]; then sleep "$EXIT_AFTER"; echo "exiting with ${EXIT_CODE:-0}"; exit "${EXIT_CODE:-0}"; fi
exec httpd -f -v -p 80 -h /www
"""


def _build(client: docker.DockerClient, tag: str, files: dict[str, tuple[bytes, int]]) -> str:
    try:
        client.images.get(tag)
        return tag
    except docker.errors.ImageNotFound:
        pass
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        for name, (data, mode) in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    client.images.build(fileobj=context, custom_context=True, tag=tag, rm=True, forcerm=True,
                        labels={"dockyard.test-image": "true"})
    return tag


def app_image(client: docker.DockerClient) -> str:
    base = busybox_image(client)
    dockerfile = f'FROM {base}\nCOPY run.sh /run.sh\nCMD ["sh", "/run.sh"]\n'.encode()
    return _build(client, APP_TAG, {"Dockerfile": (dockerfile, 0o644), "run.sh": (APP_RUN, 0o755)})


def seed_image(client: docker.DockerClient) -> str:
    """The seed's customised notebook: its Dockerfile's steps, on the local Python + nuvla-api image."""
    base = python_image(client)

    def read(name: str) -> bytes:
        with open(os.path.join(SEED_DIR, name), "rb") as f:
            return f.read()

    dockerfile = f"""FROM {base}
RUN ln -sf /usr/bin/python3 /usr/bin/python && mkdir -p /gssc
ADD nuvla-integration.py /root/
RUN chmod a+x /root/nuvla-integration.py
ADD start-notebook.sh /root/
RUN chmod a+x /root/start-notebook.sh
ENTRYPOINT ["/root/start-notebook.sh"]
""".encode()
    return _build(client, SEED_TAG, {"Dockerfile": (dockerfile, 0o644),
                                     "nuvla-integration.py": (read("nuvla-integration.py"), 0o755),
                                     "start-notebook.sh": (read("start-notebook.sh"), 0o755)})


LATE_TAG = "dockyard-test/late-server:1"
# serves its environment on port 80 once START_AFTER seconds have passed (nothing listens before)
LATE_RUN = b"""#!/bin/sh
mkdir -p /www
env > /www/index.html
echo "serving in ${START_AFTER:-0} s"
sleep "${START_AFTER:-0}"
exec httpd -f -v -p 80 -h /www
"""


def late_image(client: docker.DockerClient) -> str:
    base = busybox_image(client)
    dockerfile = f'FROM {base}\nCOPY run.sh /run.sh\nCMD ["sh", "/run.sh"]\n'.encode()
    return _build(client, LATE_TAG, {"Dockerfile": (dockerfile, 0o644), "run.sh": (LATE_RUN, 0o755)})
