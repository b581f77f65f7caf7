"""The little of the Docker Registry HTTP API v2 that Dockyard needs: log in, and ask for an image's manifest.

Authentication follows the distribution spec (and what ``docker login``/``docker pull`` do): a request is
first sent without credentials; a 401 carries a ``WWW-Authenticate`` challenge. A ``Basic`` challenge is
answered by sending the request again with basic auth; a ``Bearer`` one by asking the challenge's ``realm``
for a token (with basic auth, for its ``service`` and the ``scope`` the request needs) and sending the
request again with that token.

TLS is verified (system CAs). An endpoint written ``http://`` is spoken to in plain HTTP, as Docker does for
registries it treats as insecure (every 127.0.0.0/8 address by default); one written without a scheme is
``https://``.

Every ``httpx`` error is translated here into a :class:`~dockyard.drivers.base.DriverError` whose reason is
one of :data:`REGISTRY_AUTH` (the registry refused the credential, or wants one and none was given),
:data:`IMAGE_NOT_FOUND`, :data:`REGISTRY_TLS` or :data:`REGISTRY_UNAVAILABLE` (recoverable). Messages name
the registry (and the image) and keep the registry's own reason; they never hold a password or a token.
"""

from __future__ import annotations

import functools
import re
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from dockyard.drivers.base import DriverError, RegistryAuth

__all__ = ["IMAGE_NOT_FOUND", "REGISTRY_AUTH", "REGISTRY_ERROR", "REGISTRY_TLS", "REGISTRY_UNAVAILABLE",
           "ImageName", "base_url", "check_manifest", "login", "parse_image", "server_address"]

REGISTRY_AUTH = "registry-auth"
REGISTRY_UNAVAILABLE = "registry-unavailable"
REGISTRY_TLS = "registry-tls"
REGISTRY_ERROR = "registry-error"
IMAGE_NOT_FOUND = "image-not-found"

# what a pull accepts: single-platform manifests and multi-platform indexes, Docker's and OCI's
MANIFEST_TYPES = ", ".join((
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
))
_PARAM = re.compile(r'(\w+)="([^"]*)"')


@dataclass(frozen=True)
class ImageName:
    """An image reference split as Docker does: ``registry`` is "" when the first part names no host."""

    registry: str  # host[:port]
    repository: str  # the path in the registry
    reference: str  # a tag or a digest

    def __str__(self) -> str:
        sep = "@" if self.reference.startswith("sha256:") else ":"
        return f"{self.registry + '/' if self.registry else ''}{self.repository}{sep}{self.reference}"


def parse_image(ref: str) -> ImageName:
    """``127.0.0.1:5000/team/app:1`` → (``127.0.0.1:5000``, ``team/app``, ``1``); the tag defaults to latest."""
    name, reference = ref, "latest"
    if "@" in name:
        name, reference = name.split("@", 1)
    elif ":" in name.rsplit("/", 1)[-1]:
        name, reference = name.rsplit(":", 1)
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return ImageName(first, rest, reference)
    return ImageName("", name, reference)


def base_url(endpoint: str) -> str:
    """The registry's URL: as written when it has a scheme, else https."""
    endpoint = endpoint.strip().rstrip("/")
    return endpoint if "://" in endpoint else f"https://{endpoint}"


def server_address(endpoint: str) -> str:
    """What Docker calls the registry (``serveraddress``, an image's first part): host[:port], no scheme."""
    return urlsplit(base_url(endpoint)).netloc


def login(endpoint: str, auth: RegistryAuth, *, timeout: float) -> None:
    """Whether the registry accepts ``auth`` (``docker login``'s question). Raises DriverError if not."""
    where = server_address(endpoint)
    with _client(timeout) as client:
        response = _send(client, "GET", f"{base_url(endpoint)}/v2/", auth, scope="", where=where)
    if response.status_code == 200:
        return
    raise _refusal(response, where, f"the registry {where}", auth)


def check_manifest(endpoint: str, image: ImageName, auth: RegistryAuth | None, *, timeout: float) -> None:
    """Whether ``image``'s manifest can be read with ``auth`` (a HEAD request, nothing is downloaded).
    Raises DriverError if not."""
    where = server_address(endpoint)
    url = f"{base_url(endpoint)}/v2/{image.repository}/manifests/{image.reference}"
    with _client(timeout) as client:
        response = _send(client, "HEAD", url, auth, scope=f"repository:{image.repository}:pull", where=where,
                         headers={"Accept": MANIFEST_TYPES})
    if response.status_code == 200:
        return
    raise _refusal(response, where, f"image '{image}'", auth)


# -- one request, authenticated as the registry asks --------------------------------------------------------

def _client(timeout: float) -> httpx.Client:
    return httpx.Client(timeout=timeout, verify=_tls(), follow_redirects=True)


@functools.cache
def _tls() -> ssl.SSLContext:
    """One verifying context for every request: loading the CA bundle costs tens of ms, on each start."""
    return httpx.create_ssl_context()


def _send(client: httpx.Client, method: str, url: str, auth: RegistryAuth | None, *, scope: str, where: str,
          headers: dict[str, str] | None = None) -> httpx.Response:
    headers = dict(headers or {})
    try:
        response = client.request(method, url, headers=headers)
        if response.status_code != 401 or auth is None:
            return response
        scheme, params = _challenge(response.headers.get("www-authenticate", ""))
        if scheme == "basic":
            return client.request(method, url, headers=headers, auth=(auth.username, auth.password))
        if scheme == "bearer" and params.get("realm"):
            token = _token(client, url, params, auth, scope, where)
            if token is None:  # the token service refused it: the registry's own refusal says why
                return response
            return client.request(method, url, headers={**headers, "Authorization": f"Bearer {token}"})
        return response
    except httpx.HTTPError as exc:
        raise _transport_error(exc, where) from exc


def _challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.strip().partition(" ")
    return scheme.lower(), dict(_PARAM.findall(rest))


def _token(client: httpx.Client, url: str, params: dict[str, str], auth: RegistryAuth, scope: str,
           where: str) -> str | None:
    """A token from the challenge's realm, or None when the realm refuses the credential."""
    realm = params["realm"]
    if urlsplit(realm).scheme != "https" and urlsplit(url).scheme == "https":
        # the password would leave TLS for a realm the registry named: refuse, as a misconfiguration
        raise DriverError(f"The registry {where} sends credentials to a token service without TLS ({realm}).",
                          reason=REGISTRY_TLS)
    query = {k: v for k, v in (("service", params.get("service", "")), ("scope", scope or params.get("scope", "")),
                               ("account", auth.username)) if v}
    response = client.get(realm, params=query, auth=(auth.username, auth.password))
    if response.status_code in (401, 403):
        return None
    if response.status_code != 200:
        raise DriverError(f"The token service of the registry {where} answered {_status(response)}.",
                          reason=REGISTRY_UNAVAILABLE if response.status_code >= 500 else REGISTRY_ERROR,
                          recoverable=response.status_code >= 500)
    try:
        body = response.json()
    except ValueError as exc:
        raise DriverError(f"The token service of the registry {where} answered no JSON.",
                          reason=REGISTRY_ERROR) from exc
    token = (body.get("token") or body.get("access_token")) if isinstance(body, dict) else None
    if not isinstance(token, str) or not token:
        raise DriverError(f"The token service of the registry {where} answered no token.", reason=REGISTRY_ERROR)
    return token


# -- what an answer means -----------------------------------------------------------------------------------

def _refusal(response: httpx.Response, where: str, what: str, auth: RegistryAuth | None) -> DriverError:
    code = response.status_code
    status = _status(response)
    if code == 401 and auth is None:
        return DriverError(f"The registry {where} needs a credential for {what} ({status}).",
                           reason=REGISTRY_AUTH)
    if code == 401:
        # the user name stays out: a deployment's user may be using an app's credential they cannot read
        return DriverError(f"The registry {where} refused the credential given for {what} ({status}).",
                           reason=REGISTRY_AUTH)
    if code == 403:
        return DriverError(f"The registry {where} denies access to {what} ({status}).", reason=REGISTRY_AUTH)
    if code == 404:
        return DriverError(f"The registry {where} has no {what} ({status}).", reason=IMAGE_NOT_FOUND)
    if code >= 500:
        return DriverError(f"The registry {where} failed answering for {what} ({status}); try again later.",
                           reason=REGISTRY_UNAVAILABLE, recoverable=True)
    return DriverError(f"The registry {where} answered {status} for {what}.", reason=REGISTRY_ERROR)


def _status(response: httpx.Response) -> str:
    """``401 Unauthorized: authentication required``: the code, and the registry's first error if it gave one."""
    text = f"{response.status_code} {response.reason_phrase}".strip()
    try:
        errors = response.json().get("errors") if response.content else None
    except (ValueError, AttributeError):
        errors = None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict) and errors[0].get("message"):
        text += f": {str(errors[0]['message'])[:200]}"
    return text


def _transport_error(exc: httpx.HTTPError, where: str) -> DriverError:
    text = str(exc) or type(exc).__name__
    if "CERTIFICATE_VERIFY_FAILED" in text or "SSL" in text or "certificate" in text.lower():
        return DriverError(f"TLS with the registry {where} failed: {text[:300]}", reason=REGISTRY_TLS)
    if isinstance(exc, httpx.TimeoutException):
        return DriverError(f"The registry {where} does not answer in time.", reason=REGISTRY_UNAVAILABLE,
                           recoverable=True)
    return DriverError(f"Cannot reach the registry {where}: {text[:300]}", reason=REGISTRY_UNAVAILABLE,
                       recoverable=True)
