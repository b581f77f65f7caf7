"""``dockyard.drivers.registry`` against the real registry: basic auth (htpasswd), and the bearer-token flow
(the same registry's storage served by a second registry whose ``Bearer`` challenge sends clients to a token
service); each refusal translated with its reason, naming the registry and the image."""

from __future__ import annotations

import pytest

from dockyard.drivers import registry
from dockyard.drivers.base import DriverError, RegistryAuth

TIMEOUT = 5.0


def auth(private_registry, password: str | None = None) -> RegistryAuth:
    return RegistryAuth(private_registry.username, password or private_registry.password,
                        private_registry.address)


def refusal(call, *args, **kwargs) -> DriverError:
    with pytest.raises(DriverError) as err:
        call(*args, timeout=TIMEOUT, **kwargs)
    return err.value


def test_parse_image_and_addresses():
    assert registry.parse_image("127.0.0.1:5000/team/app:1") == registry.ImageName("127.0.0.1:5000", "team/app", "1")
    assert registry.parse_image("localhost/app") == registry.ImageName("localhost", "app", "latest")
    assert registry.parse_image("dockyard-test/app:2") == registry.ImageName("", "dockyard-test/app", "2")
    assert registry.parse_image("r.example.org/a@sha256:ab").reference == "sha256:ab"
    assert str(registry.parse_image("r.example.org:443/a/b:c")) == "r.example.org:443/a/b:c"
    assert registry.server_address("https://r.example.org/") == "r.example.org"
    assert registry.server_address("r.example.org:5000") == "r.example.org:5000"
    assert registry.base_url("r.example.org:5000") == "https://r.example.org:5000"
    assert registry.base_url("http://127.0.0.1:5000/") == "http://127.0.0.1:5000"


@pytest.mark.parametrize("kind", ["basic", "bearer"])
def test_login_and_manifest_with_the_right_and_a_wrong_password(kind, private_registry, token_registry):
    endpoint = private_registry.endpoint if kind == "basic" else token_registry[0]
    where = registry.server_address(endpoint)
    image = registry.parse_image(private_registry.image)
    image = registry.ImageName(where, image.repository, image.reference)

    registry.login(endpoint, auth(private_registry), timeout=TIMEOUT)
    registry.check_manifest(endpoint, image, auth(private_registry), timeout=TIMEOUT)

    err = refusal(registry.login, endpoint, auth(private_registry, "wrong"))
    assert err.reason == registry.REGISTRY_AUTH and not err.recoverable
    assert err.message.startswith(f"The registry {where} refused the credential given for the registry {where} "
                                  f"(401 Unauthorized")
    err = refusal(registry.check_manifest, endpoint, image, auth(private_registry, "wrong"))
    assert err.reason == registry.REGISTRY_AUTH
    assert err.message.startswith(f"The registry {where} refused the credential given for image '{image}'")
    err = refusal(registry.check_manifest, endpoint, image, None)
    assert err.reason == registry.REGISTRY_AUTH
    assert err.message.startswith(f"The registry {where} needs a credential for image '{image}' (401")
    missing = registry.ImageName(where, image.repository, "no-such-tag")
    err = refusal(registry.check_manifest, endpoint, missing, auth(private_registry))
    assert err.reason == registry.IMAGE_NOT_FOUND
    assert err.message.startswith(f"The registry {where} has no image '{missing}' (404 Not Found")
    for text in (err.message, str(err)):
        assert private_registry.password not in text


def test_the_token_flow_asks_for_the_images_pull_scope(private_registry, token_registry):
    endpoint, tokens = token_registry
    image = registry.parse_image(private_registry.image)
    image = registry.ImageName(registry.server_address(endpoint), image.repository, image.reference)
    before = len(tokens.requests)
    registry.check_manifest(endpoint, image, auth(private_registry), timeout=TIMEOUT)
    assert tokens.requests[before:] == [{"scope": f"repository:{image.repository}:pull", "outcome": 200,
                                         "user": private_registry.username}]


def test_an_unreachable_registry_is_recoverable_and_says_so():
    err = refusal(registry.login, "http://127.0.0.1:9", RegistryAuth("u", "p", "127.0.0.1:9"))
    assert err.reason == registry.REGISTRY_UNAVAILABLE and err.recoverable
    assert err.message.startswith("Cannot reach the registry 127.0.0.1:9: ")
    err = refusal(registry.login, "https://127.0.0.1:9", RegistryAuth("u", "p", "127.0.0.1:9"))
    assert err.reason == registry.REGISTRY_UNAVAILABLE
