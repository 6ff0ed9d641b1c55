#!/bin/bash
# STAND-IN for the UI image's ./start.sh (stand-in image, standin_images/build.sh):
# Debian's nginx serving TLS on 3000 with the certificate in /tmp/ssl_certs (the ssl-certs
# volume: the generated UI certificate, or the operator's), proxying the API to core at
# CE_API_URL:CE_API_PORT as CE's compose wires the UI to core.
set -euo pipefail
conf=/tmp/nginx-standin
mkdir -p "$conf"
cat >"${conf}/nginx.conf" <<CONF
daemon off;
pid ${conf}/nginx.pid;
error_log stderr notice;
events {}
http {
  access_log off;
  client_body_temp_path ${conf}/body;
  proxy_temp_path ${conf}/proxy;
  fastcgi_temp_path ${conf}/fastcgi;
  uwsgi_temp_path ${conf}/uwsgi;
  scgi_temp_path ${conf}/scgi;
  server {
    listen 3000 ssl;
    ssl_certificate /tmp/ssl_certs/cte_cert.crt;
    ssl_certificate_key /tmp/ssl_certs/cte_cert_key.key;
    ssl_protocols ${TLS_VERSION:-TLSv1.3};
    location /api/ { proxy_pass ${CE_API_URL:-http://localhost}:${CE_API_PORT:-8000}/; }
    location / { return 200 "Cloud Exchange UI stand-in\n"; }
  }
}
CONF
echo "ui stand-in: nginx on 3000 (TLS), /api/ to ${CE_API_URL:-http://localhost}:${CE_API_PORT:-8000}" >&2
exec nginx -c "${conf}/nginx.conf" -e stderr
