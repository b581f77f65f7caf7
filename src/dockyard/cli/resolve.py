"""From what a user types to a resource id: a full id, a uuid, a unique uuid prefix, or an app's path.

As Docker does, any prefix of the uuid that only one visible resource has names that resource; a prefix
that several have is refused (exit 2) with the candidates listed, and one that none has is not found
(exit 3). The prefix is matched by the server (``id^='deployment/3f2a'``), so nothing is listed wholesale.
"""

from __future__ import annotations

import re

from .client import NOT_FOUND, USAGE, CliError, Client, quote
from .output import short

UUID_PREFIX = re.compile(r"^[0-9a-fA-F][0-9a-fA-F-]*$")
VERSION = re.compile(r"^module/[0-9a-fA-F-]+_\d+$")
CANDIDATES = 10


def resource(client: Client, rtype: str, ref: str, *, describe: str = "name") -> str:
    """The id of the one ``rtype`` that ``ref`` names (an id, a uuid, or a unique uuid prefix)."""
    ref = ref.strip()
    if ref.startswith(rtype + "/"):
        ref = ref[len(rtype) + 1:]
    elif "/" in ref:
        raise CliError(f"{ref} is not a {rtype} id", USAGE)
    if not ref or not UUID_PREFIX.match(ref):
        raise CliError(f"no {rtype} '{ref}': give its id or the start of its uuid", NOT_FOUND)
    found = client.search(rtype, filter=f"id^={quote(f'{rtype}/{ref.lower()}')}", last=CANDIDATES + 1,
                          orderby="created:desc")
    return _one(rtype, ref, found, describe)


def _one(rtype: str, ref: str, found: dict, describe: str) -> str:
    docs = found.get("resources") or []
    if not docs:
        raise CliError(f"no {rtype} matches '{ref}'", NOT_FOUND)
    if len(docs) == 1:
        return docs[0]["id"]
    exact = [d for d in docs if d["id"].split("/", 1)[1] == ref.lower()]
    if len(exact) == 1:
        return exact[0]["id"]
    lines = [f"  {short(d['id'])}  {d['id']}" + (f"  {d[describe]}" if d.get(describe) else "")
             for d in docs[:CANDIDATES]]
    more = found.get("count", len(docs)) - CANDIDATES
    if more > 0:
        lines.append(f"  ... and {more} more")
    raise CliError(f"'{ref}' is ambiguous: {found.get('count', len(docs))} {rtype}s match; give more of the "
                   "id. Candidates:\n" + "\n".join(lines), USAGE)


def app(client: Client, ref: str) -> str:
    """The id of the app (module) that ``ref`` names: its path (``project/app``), its id, or a uuid prefix."""
    ref = ref.strip()
    if VERSION.match(ref):  # one version of an app: read as such, never abbreviated
        return ref
    if ref.startswith("module/"):
        return resource(client, "module", ref, describe="path")
    if UUID_PREFIX.match(ref):
        found = client.search("module", filter=f"id^={quote('module/' + ref.lower())}", last=CANDIDATES + 1)
        if found.get("resources"):
            return _one("module", ref, found, "path")
    by_path = client.search("module", filter=f"path={quote(ref)}", select="id,path", last=1)
    if by_path.get("resources"):
        return by_path["resources"][0]["id"]
    raise CliError(f"no app '{ref}': give its path (project/app), its id or the start of its uuid", NOT_FOUND)


def deployment(client: Client, ref: str) -> str:
    return resource(client, "deployment", ref, describe="name")
