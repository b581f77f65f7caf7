#!/usr/bin/env python3
"""An RStudio-like server: nothing is shown until the user logs in with the password.

As RStudio Server: an unauthenticated request is sent to the sign-in form (``/auth-sign-in``), which posts
``username`` and ``password`` to ``/auth-do-sign-in``; the right pair gets a session cookie and a redirect
to ``/``, a wrong one 401 and the form again. Scripts may send HTTP Basic credentials instead.
"""

import argparse
import base64
import hmac
import html
import http.cookies
import http.server
import secrets
import urllib.parse

COOKIE = "rstudio-session"
FORM = """<!doctype html><title>Sign in to RStudio</title>
<form method="post" action="/auth-do-sign-in">{error}
<label>Username <input name="username" value="{user}"></label>
<label>Password <input name="password" type="password"></label>
<button>Sign in</button></form>
"""


class RStudioHandler(http.server.BaseHTTPRequestHandler):
    user = "rstudio"
    password = ""
    sessions = set()

    def _reply(self, status, body="", headers=()):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _matches(self, user, password):
        return (hmac.compare_digest(user.encode(), self.user.encode())
                & hmac.compare_digest(password.encode(), self.password.encode()))

    def _signed_in(self):
        cookies = http.cookies.SimpleCookie(self.headers.get("Cookie", ""))
        if COOKIE in cookies and cookies[COOKIE].value in self.sessions:
            return True
        scheme, _, value = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                pair = base64.b64decode(value.strip(), validate=True).decode(errors="replace")
            except ValueError:  # not base64: no credentials at all
                return False
            user, _, password = pair.partition(":")
            return self._matches(user, password)
        return False

    def do_GET(self):
        path = urllib.parse.urlsplit(self.path).path
        if path == "/auth-sign-in":
            self._reply(200, FORM.format(error="", user=html.escape(self.user)))
        elif self._signed_in():
            self._reply(200, f"<!doctype html><title>RStudio</title><h1>RStudio-like session of "
                             f"{html.escape(self.user)}</h1>\n")
        else:
            self._reply(302, headers=[("Location", "/auth-sign-in")])

    def do_POST(self):
        if urllib.parse.urlsplit(self.path).path != "/auth-do-sign-in":
            self._reply(404, "not found\n")
            return
        length = int(self.headers.get("Content-Length") or 0)
        form = urllib.parse.parse_qs(self.rfile.read(length).decode(errors="replace"))
        user, password = form.get("username", [""])[0], form.get("password", [""])[0]
        if not self._matches(user, password):
            error = "<p role=alert>Incorrect or invalid username/password</p>"
            self._reply(401, FORM.format(error=error, user=html.escape(user)))
            return
        session = secrets.token_urlsafe(24)
        self.sessions.add(session)
        self._reply(302, headers=[("Location", "/"),
                                  ("Set-Cookie", f"{COOKIE}={session}; HttpOnly; SameSite=Strict; Path=/")])


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8787)
    parser.add_argument("--user", default="rstudio")
    parser.add_argument("--password-file", required=True)
    args = parser.parse_args()
    with open(args.password_file) as handle:
        RStudioHandler.password = handle.read().strip()
    RStudioHandler.user = args.user
    server = http.server.ThreadingHTTPServer(("", args.port), RStudioHandler)
    print(f"rstudio-like server on port {args.port}, user {args.user}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
