#!/bin/sh
# Serve the data selected at launch: each record's bucket is mounted (read-only) at /mnt/<bucket>, and
# /mnt is the web server's document root, so an object is at http://<host>:<port>/<bucket>/<object>.
# The index page lists what was mounted when the container started.
set -e
mkdir -p /mnt
escape() { sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g' -e 's/"/\&quot;/g'; }
{
  echo '<!doctype html><title>Data</title><h1>Data selected at launch</h1><ul>'
  find /mnt -mindepth 2 -type f | sort | sed 's|^/mnt/||' | escape \
    | while read -r name; do echo "<li><a href=\"/$name\">$name</a></li>"; done
  echo '</ul>'
} > /mnt/index.html
echo "serving $(grep -c '<li>' /mnt/index.html || true) files from /mnt"
exec httpd -f -v -p 80 -h /mnt
