"""The compose application the application tests deploy: ``web`` (busybox httpd) reaches ``db`` (Python with
nuvla-api) by its service name, and ``db`` uses the deployment's key to set an output parameter.

* ``web`` serves its environment at ``/`` and, at ``/cgi-bin/db``, what ``db`` answers at
  ``http://db:8081/`` (fetched with busybox ``wget`` from the CGI script);
* ``db`` logs in with ``NUVLA_API_KEY``/``NUVLA_API_SECRET``, sets the output parameter ``db-says``, then serves
  ``db answers <GREETING>`` on 8081 and logs each request.

Both images are built here on the local busybox and Python + nuvla-api images (nothing is pulled).
"""

from __future__ import annotations

import uuid

import docker
from nuvla.api import Api

from ..deployments.images import _build
from ..support.images import busybox_image, python_image

WEB_TAG = "dockyard-test/app-web:1"
DB_TAG = "dockyard-test/app-db:1"

WEB_RUN = b"""#!/bin/sh
mkdir -p /www/cgi-bin
env > /www/index.html
cat > /www/cgi-bin/db <<'CGI'
#!/bin/sh
echo "Content-Type: text/plain"
echo
wget -q -O - http://db:8081/
CGI
chmod +x /www/cgi-bin/db
echo "web of $NUVLA_DEPLOYMENT_ID starting"
exec httpd -f -v -p 80 -h /www
"""

DB_PY = b"""import http.server, os, socket
from nuvla.api import Api

print("db of", os.environ["NUVLA_DEPLOYMENT_ID"], "starting", flush=True)
api = Api(endpoint=os.environ["NUVLA_ENDPOINT"], insecure=True, persist_cookie=False)
api.login_apikey(os.environ["NUVLA_API_KEY"], os.environ["NUVLA_API_SECRET"])
dep = os.environ["NUVLA_DEPLOYMENT_ID"]
[param] = api.search("deployment-parameter", filter=f"parent='{dep}' and name='db-says'").resources
api.edit(param.id, {"value": "hello from db: " + os.environ.get("GREETING", "")})
print("db set db-says", flush=True)


class Answer(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("db answers " + os.environ.get("GREETING", "") + " from " + socket.gethostname() + "\\n").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        print("db served", self.path, flush=True)


http.server.ThreadingHTTPServer(("", 8081), Answer).serve_forever()
"""

COMPOSE = """
services:
  web:
    image: %(web)s
    ports:
      - "80"
    environment:
      WEB_TITLE: "web of ${NUVLA_DEPLOYMENT_UUID}"
  db:
    image: %(db)s
    volumes:
      - cache:/cache
volumes:
  cache: {}
"""


def app_images(client: docker.DockerClient) -> dict[str, str]:
    web_file = f'FROM {busybox_image(client)}\nCOPY run.sh /run.sh\nCMD ["sh", "/run.sh"]\n'.encode()
    db_file = f'FROM {python_image(client)}\nCOPY db.py /db.py\nCMD ["python3", "-u", "/db.py"]\n'.encode()
    return {"web": _build(client, WEB_TAG, {"Dockerfile": (web_file, 0o644), "run.sh": (WEB_RUN, 0o755)}),
            "db": _build(client, DB_TAG, {"Dockerfile": (db_file, 0o644), "db.py": (DB_PY, 0o644)})}


def compose_text(images: dict[str, str]) -> str:
    return COMPOSE % images


def application(api: Api, compose: str, compatibility: str = "docker-compose", **content) -> str:
    """A project and a compose application in it; returns the module id."""
    project = f"p{uuid.uuid4().hex[:8]}"
    api.add("module", {"path": project, "subtype": "project", "name": project})
    body = {"path": f"{project}/app", "subtype": "application", "name": "app", "compatibility": compatibility,
            "content": {"docker-compose": compose, "author": "tests", **content}}
    return api.add("module", body).data["resource-id"]


APP_CONTENT = {
    "environmental-variables": [{"name": "GREETING", "value": "hi"}],
    "output-parameters": [{"name": "db-says", "description": "set by db with the deployment's key"}],
    "urls": [["web", "http://${hostname}:${web.tcp.80}/"]],
}
