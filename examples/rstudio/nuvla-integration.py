#!/usr/bin/env python3
"""Generate the server's password, keep it in /root/password.txt, and publish it as the deployment's
``password`` output parameter with the nuvla-api client, logged in with the deployment's own key (the
seed's pattern for its notebook token).

Run outside Dockyard or Nuvla (plain ``docker run``), it prints the password instead.
"""

import os
import secrets

from nuvla.api import Api
from nuvla.api.resources.deployment import Deployment

PASSWORD_FILE = "/root/password.txt"


def main():
    password = secrets.token_urlsafe(18)
    with open(os.open(PASSWORD_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
        handle.write(password)

    names = ("NUVLA_ENDPOINT", "NUVLA_API_KEY", "NUVLA_API_SECRET", "NUVLA_DEPLOYMENT_ID")
    endpoint, key, secret, deployment_id = (os.getenv(n) for n in names)
    if not all((endpoint, key, secret, deployment_id)):
        print(f"not deployed by Nuvla or Dockyard (no {', '.join(names)}): the password is {password}",
              flush=True)
        return

    api = Api(endpoint=endpoint, insecure=True, persist_cookie=False)
    api.login_apikey(key, secret)
    # the parameter's node-id is the deployment's uuid, as Nuvla's
    Deployment(api).set_parameter(deployment_id, deployment_id.split("/")[1], "password", password)
    print("password published", flush=True)


if __name__ == "__main__":
    main()
