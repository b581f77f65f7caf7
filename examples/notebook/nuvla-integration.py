#!/usr/bin/env python3
"""The seed's nuvla-integration.py for the notebook-like server.

1. Link each data record selected at launch into /home/notebook/data/ (its bucket is mounted at
   /mnt/<bucket>, or at the record's mount target).
2. Generate a token, keep it in /root/token.txt for the server, and publish it as the deployment's
   ``jupyter-token`` output parameter with the nuvla-api client, logged in with the deployment's own key.

Run outside Dockyard or Nuvla (plain ``docker run``), it skips both and prints the token instead.
"""

import os
import secrets
import string

from nuvla.api import Api
from nuvla.api.resources.deployment import Deployment

DATA_DIR = "/home/notebook/data"
TOKEN_FILE = "/root/token.txt"
ALPHABET = string.ascii_lowercase + string.digits


def link_data(api, deployment):
    """A link per selected record: data/<bucket>__<object> -> the object in its mounted bucket."""
    for record_id in deployment.get("data-records") or {}:
        record = api.get(record_id).data
        bucket, name = record.get("data:bucket"), record.get("data:object")
        if not bucket or not name:
            continue
        mount = (record.get("mount") or {}).get("target") or f"/mnt/{bucket}"
        link = os.path.join(DATA_DIR, f"{bucket}__{name.replace('/', '__')}")
        if not os.path.lexists(link):
            os.symlink(os.path.join(mount, name), link)


def main():
    token = "".join(secrets.choice(ALPHABET) for _ in range(24))
    with open(os.open(TOKEN_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
        handle.write(token)
    os.makedirs(DATA_DIR, exist_ok=True)

    names = ("NUVLA_ENDPOINT", "NUVLA_API_KEY", "NUVLA_API_SECRET", "NUVLA_DEPLOYMENT_ID")
    endpoint, key, secret, deployment_id = (os.getenv(n) for n in names)
    if not all((endpoint, key, secret, deployment_id)):
        print(f"not deployed by Nuvla or Dockyard (no {', '.join(names)}): the token is {token}", flush=True)
        return

    api = Api(endpoint=endpoint, insecure=True, persist_cookie=False)
    api.login_apikey(key, secret)
    deployment = api.get(deployment_id).data
    link_data(api, deployment)
    # the parameter's node-id is the deployment's uuid, as Nuvla's (and the seed's id computation) has it
    Deployment(api).set_parameter(deployment_id, deployment_id.split("/")[1], "jupyter-token", token)
    print("jupyter-token published", flush=True)


if __name__ == "__main__":
    main()
