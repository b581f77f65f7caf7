#!/bin/sh
# Make a random password and publish it as the deployment's 'password' parameter, then serve with it.
set -e
python3 /opt/rstudio/nuvla-integration.py
exec python3 /opt/rstudio/rstudio.py --port 8787 --user rstudio --password-file /root/password.txt
