#!/bin/sh
# As the seed's start-notebook.sh: link the selected data, make the token and publish it, then serve.
set -e
python3 /opt/notebook/nuvla-integration.py
exec python3 /opt/notebook/notebook.py --port 8888 --root /home/notebook --token-file /root/token.txt
