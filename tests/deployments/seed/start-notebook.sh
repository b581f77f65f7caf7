#!/bin/bash -xe

# create links for requested data objects
/root/nuvla-integration.py

token=$(cat /root/token.txt)

# start service in the foreground with logging to console
# (the seed starts Jupyter here; the test image serves /gssc with Python's http.server instead)
cd /gssc
exec python3 -m http.server 8888
