#!/usr/bin/env python3
"""A notebook-like server: it lists and serves the files under --root, but only to who brings the token.

As Jupyter: the token is accepted as ``?token=...`` in the URL (the first visit then sets a cookie, so
links work without it) or as an ``Authorization: token ...`` header; anything else gets 403.
"""

import argparse
import functools
import hmac
import http.cookies
import http.server
import urllib.parse

COOKIE = "notebook-token"


class NotebookHandler(http.server.SimpleHTTPRequestHandler):
    token = ""

    def _offered(self):
        """The token this request offers, and whether it came in the URL."""
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        if query.get("token"):
            return query["token"][0], True
        scheme, _, value = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "token" and value:
            return value.strip(), False
        cookies = http.cookies.SimpleCookie(self.headers.get("Cookie", ""))
        return (cookies[COOKIE].value if COOKIE in cookies else ""), False

    def _allowed(self):
        offered, in_url = self._offered()
        if not hmac.compare_digest(offered.encode(), self.token.encode()):
            body = b"403: Forbidden. Open the notebook's URL, which carries its token.\n"
            self.send_response(403)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            return False
        self.set_cookie = in_url
        return True

    def end_headers(self):
        if getattr(self, "set_cookie", False):
            self.send_header("Set-Cookie", f"{COOKIE}={self.token}; HttpOnly; SameSite=Strict; Path=/")
        super().end_headers()

    def do_GET(self):
        if self._allowed():
            super().do_GET()

    def do_HEAD(self):
        if self._allowed():
            super().do_HEAD()


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8888)
    parser.add_argument("--root", default=".")
    parser.add_argument("--token-file", required=True)
    args = parser.parse_args()
    with open(args.token_file) as handle:
        NotebookHandler.token = handle.read().strip()
    handler = functools.partial(NotebookHandler, directory=args.root)
    server = http.server.ThreadingHTTPServer(("", args.port), handler)
    print(f"notebook serving {args.root} on port {args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
