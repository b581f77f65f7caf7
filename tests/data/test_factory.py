"""The embedded store and S3 stores: which URLs spell this server's store, and what the factories open."""

from __future__ import annotations

import os

import pytest

from dockyard.data import DirectoryStore, embedded_endpoint, embedded_store, is_embedded, objects_root, s3_store
from dockyard.data.s3 import S3Store

BASE = "http://dock.example:8200"


@pytest.mark.parametrize("endpoint", [
    "http://dock.example:8200/data",
    "http://dock.example:8200/data/",
    "HTTP://DOCK.example:8200/data",
    " http://dock.example:8200/data ",
])
def test_this_servers_data_path_is_embedded(endpoint):
    assert is_embedded(endpoint, BASE)


@pytest.mark.parametrize("endpoint", [
    "http://dock.example:9000",            # a MinIO next to it
    "http://dock.example:9000/data",       # another port is another server
    "https://dock.example:8200/data",      # another scheme
    "http://other.example:8200/data",
    "http://dock.example:8200",
    "http://dock.example:8200/data/more",
    "http://dock.example:8200/datax",
    "http://dock.example:8200/data?x=1",
    "http://dock.example:notaport/data",
    "",
])
def test_anything_else_is_s3(endpoint):
    assert not is_embedded(endpoint, BASE)


def test_default_ports_and_loopback_names_are_the_same_origin():
    assert is_embedded("https://dock.example/data", "https://dock.example:443")
    assert is_embedded("http://dock.example:80/data", "http://dock.example/")
    assert is_embedded("http://localhost:8200/data", "http://127.0.0.1:8200")
    assert is_embedded("http://[::1]:8200/data", "http://localhost:8200")
    assert not is_embedded("http://localhost:8201/data", "http://127.0.0.1:8200")


def test_behind_a_path_prefix_the_data_path_follows_it():
    assert embedded_endpoint("https://h.example/dockyard/") == "https://h.example/dockyard/data"
    assert is_embedded("https://h.example/dockyard/data", "https://h.example/dockyard")
    assert not is_embedded("https://h.example/data", "https://h.example/dockyard")


def test_the_embedded_store_keeps_its_buckets_in_the_data_dir_and_signs_urls_for_the_base(tmp_path):
    store = embedded_store(str(tmp_path), b"k" * 32, BASE)
    assert isinstance(store, DirectoryStore)
    assert store.root == objects_root(str(tmp_path)) == os.path.join(str(tmp_path), "objects")
    assert store.presign_get("bkt", "k", 60).startswith(f"{BASE}/data/bkt/k?expires=")


def test_an_endpoint_is_always_s3_even_one_spelling_this_servers_store(tmp_path):
    """The embedded store is chosen by its service's id, never by a URL a user wrote (see dockyard.data)."""
    store = s3_store(embedded_endpoint(BASE), "ak", "sk")
    assert isinstance(store, S3Store) and store.endpoint == embedded_endpoint(BASE)


def test_s3_stores_are_kept_per_endpoint_and_keys():
    store = s3_store("http://minio.example:9000/", "ak", "sk")
    assert isinstance(store, S3Store) and store.endpoint == "http://minio.example:9000"
    assert s3_store("http://minio.example:9000", "ak", "sk") is store
    assert s3_store("http://minio.example:9000", "ak", "other") is not store
