"""Test images, built on this machine (nothing can be pulled) and cached by tag.

* :func:`busybox_image` — ``FROM scratch`` with Debian's static busybox and its applets as symlinks in /bin
  (sh, httpd, env, sleep, cat ...). Builds in about a second.
* :func:`python_image` — a Debian bookworm root (debootstrap minbase + python3 + ca-certificates) imported as
  an image, with ``nuvla-api`` installed on top, as the seed script's apps use it. Builds once in a few
  minutes; later runs find the tag and return at once.
* :func:`dind_image` — a Debian bookworm root (debootstrap minbase + docker.io, iptables, ca-certificates)
  imported as an image: a Docker-in-Docker node of the test swarm (``tests/support/swarm.py``). Same recipe,
  other packages; built once in a few minutes.

Bump an image's tag when its recipe changes, so that machines holding the old one rebuild it.
"""

from __future__ import annotations

import fcntl
import functools
import glob
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable

import docker

BUSYBOX_TAG = "dockyard-test/busybox:1"
DEBIAN_TAG = "dockyard-test/debian-python:bookworm-1"
DIND_TAG = "dockyard-test/dind:bookworm-1"
DIND_PACKAGES = ("docker.io", "iptables", "ca-certificates")
PYTHON_TAG = "dockyard-test/python-nuvla:1"
NUVLA_API = "nuvla-api==4.2.3"
SUITE = "bookworm"
CACHE_DIR = "/var/cache/dockyard-test"
IMAGE_LABELS = {"dockyard.test-image": "true"}

Progress = Callable[[str], None]


def _say(message: str) -> None:
    print(f"[test images] {message}", flush=True)


def _one_builder(build: Callable[..., str]) -> Callable[..., str]:
    """Build under a lock file shared by the test processes (scripts/test runs pytest in several workers), so
    a missing image is built once: the others wait, then find its tag."""
    @functools.wraps(build)
    def locked(*args, **kwargs) -> str:
        os.makedirs(CACHE_DIR, exist_ok=True)
        with open(os.path.join(CACHE_DIR, f"{build.__name__}.lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            return build(*args, **kwargs)
    return locked


def _has_image(client: docker.DockerClient, tag: str) -> bool:
    try:
        client.images.get(tag)
        return True
    except docker.errors.ImageNotFound:
        return False


def _apt_install(package: str, command: str, progress: Progress) -> None:
    """Install a Debian package when its command is missing (scripts/test normally did it already)."""
    if shutil.which(command) or os.path.exists(command):
        return
    progress(f"installing {package}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if subprocess.run(["apt-get", "install", "-y", "-qq", package], env=env).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", package], env=env, check=True)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    tar.addfile(info, io.BytesIO(data))


def _build(client: docker.DockerClient, tag: str, context: io.BytesIO) -> None:
    context.seek(0)
    client.images.build(fileobj=context, custom_context=True, tag=tag, rm=True, forcerm=True,
                        labels=IMAGE_LABELS)


# -- busybox -------------------------------------------------------------------------------------------

BUSYBOX_DOCKERFILE = b"""FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", \
     "/bin/busybox --install -s /bin && /bin/busybox mkdir -p /tmp /www /etc /data && /bin/busybox chmod 1777 /tmp"]
ENV PATH=/bin
CMD ["sh"]
"""


@_one_builder
def busybox_image(client: docker.DockerClient, progress: Progress = _say) -> str:
    """The tag of a tiny busybox image, built from Debian's ``busybox-static`` when missing."""
    if _has_image(client, BUSYBOX_TAG):
        return BUSYBOX_TAG
    _apt_install("busybox-static", "/bin/busybox", progress)
    progress(f"building {BUSYBOX_TAG}")
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        _add_bytes(tar, "Dockerfile", BUSYBOX_DOCKERFILE)
        with open("/bin/busybox", "rb") as binary:
            _add_bytes(tar, "busybox", binary.read(), 0o755)
    _build(client, BUSYBOX_TAG, context)
    return BUSYBOX_TAG


# -- Debian + Python + nuvla-api ----------------------------------------------------------------------

def debian_mirror(sources: list[str] | None = None) -> str:
    """The Debian archive this machine's apt uses for the main suite (deb822 or one-line sources)."""
    paths = sources if sources is not None else sorted(
        glob.glob("/etc/apt/sources.list") + glob.glob("/etc/apt/sources.list.d/*"))
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        for uri, suites in _deb822_entries(text) + _one_line_entries(text):
            if SUITE in suites and "security" not in uri and "debian" in uri:
                return uri
    raise RuntimeError(f"no Debian {SUITE} mirror found in /etc/apt/sources.list*")


def _deb822_entries(text: str) -> list[tuple[str, list[str]]]:
    entries = []
    for stanza in re.split(r"\n\s*\n", text):
        fields = dict(re.findall(r"^(\w[\w-]*):\s*(.*)$", stanza, re.MULTILINE))
        if "URIs" in fields and "Suites" in fields:
            entries += [(uri, fields["Suites"].split()) for uri in fields["URIs"].split()]
    return entries


def _one_line_entries(text: str) -> list[tuple[str, list[str]]]:
    found = re.findall(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", text, re.MULTILINE)
    return [(uri, [suite]) for uri, suite in found]


def _remove_tree(path: str) -> None:
    """Remove a debootstrap target, first unmounting what a failed run may have left mounted in it."""
    with open("/proc/mounts", encoding="utf-8") as mounts:
        points = [line.split()[1] for line in mounts if line.split()[1].startswith(path + "/")]
    for point in sorted(points, reverse=True):
        subprocess.run(["umount", "-l", point], check=False)
    subprocess.run(["rm", "-rf", "--one-file-system", path], check=False)


def _debootstrap(target: str, progress: Progress, packages: tuple[str, ...] = ("python3", "ca-certificates"),
                 ) -> None:
    _apt_install("debootstrap", "debootstrap", progress)
    mirror = debian_mirror()
    progress(f"debootstrap {SUITE} (minbase + {', '.join(packages)}) from {mirror}; this takes a few minutes")
    log_path = target + ".log"
    with open(log_path, "wb") as log:
        result = subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={','.join(packages)}", SUITE, target, mirror],
            stdout=log, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        with open(log_path, encoding="utf-8", errors="replace") as log:
            tail = log.read()[-3000:]
        raise RuntimeError(f"debootstrap failed ({result.returncode}):\n{tail}")
    os.unlink(log_path)
    for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
        subprocess.run(["sh", "-c", f"rm -rf {target}/{junk}/*"], check=False)


def _import_root(client: docker.DockerClient, target: str, tag: str, progress: Progress,
                 cmd: str = '["python3"]') -> None:
    progress(f"importing the root file system as {tag}")
    repository, _, version = tag.rpartition(":")
    tar = subprocess.Popen(["tar", "-C", target, "--numeric-owner", "-c", "."], stdout=subprocess.PIPE)
    try:
        client.api.import_image(src=tar.stdout, repository=repository, tag=version, stream_src=True,
                                changes=["ENV PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
                                         "ENV LANG=C.UTF-8", f"CMD {cmd}"])
    finally:
        tar.stdout.close()
        tar.wait()
    if tar.returncode != 0:
        raise RuntimeError(f"tar of {target} failed ({tar.returncode})")


def _debian_image(client: docker.DockerClient, tag: str, packages: tuple[str, ...], progress: Progress,
                  cmd: str) -> str:
    """A Debian root with ``packages`` imported as ``tag``, unless the engine has it already."""
    if _has_image(client, tag):
        return tag
    os.makedirs(CACHE_DIR, exist_ok=True)
    target = tempfile.mkdtemp(prefix="rootfs-", dir=CACHE_DIR)
    try:
        _debootstrap(target, progress, packages)
        _import_root(client, target, tag, progress, cmd)
    finally:
        _remove_tree(target)
    return tag


def _debian_python_image(client: docker.DockerClient, progress: Progress) -> str:
    return _debian_image(client, DEBIAN_TAG, ("python3", "ca-certificates"), progress, '["python3"]')


@_one_builder
def dind_image(client: docker.DockerClient, progress: Progress = _say) -> str:
    """The tag of a Debian bookworm image with Debian's ``docker.io`` (dockerd, containerd, runc, the CLI) and
    ``iptables``: a node of the test swarm. Built when missing; its command is set when a node starts."""
    started = time.monotonic()
    if not _has_image(client, DIND_TAG):
        _debian_image(client, DIND_TAG, DIND_PACKAGES, progress, '["dockerd"]')
        progress(f"{DIND_TAG} built in {time.monotonic() - started:.0f} s")
    return DIND_TAG


NUVLA_DOCKERFILE = f"""FROM {DEBIAN_TAG}
COPY site /opt/nuvla-site
ENV PYTHONPATH=/opt/nuvla-site
""".encode()


@_one_builder
def python_image(client: docker.DockerClient, progress: Progress = _say) -> str:
    """The tag of a Debian bookworm image with Python 3.11 and ``nuvla-api`` 4.2.3, built when missing."""
    if _has_image(client, PYTHON_TAG):
        return PYTHON_TAG
    started = time.monotonic()
    _debian_python_image(client, progress)
    with tempfile.TemporaryDirectory(prefix="nuvla-site-") as work:
        site = os.path.join(work, "site")
        progress(f"pip install --target {NUVLA_API}")
        # the host's Python is 3.11 like bookworm's, so the wheels pip picks here run in the image
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        "--no-compile", "--target", site, NUVLA_API], check=True)
        context = io.BytesIO()
        with tarfile.open(fileobj=context, mode="w") as tar:
            _add_bytes(tar, "Dockerfile", NUVLA_DOCKERFILE)
            tar.add(site, arcname="site")
        progress(f"building {PYTHON_TAG}")
        _build(client, PYTHON_TAG, context)
    progress(f"{PYTHON_TAG} built in {time.monotonic() - started:.0f} s")
    return PYTHON_TAG
