#!/bin/bash
# The stand-in layer (standin_images/build.sh runs it as root in the Debian base image,
# with this folder mounted at /recipe): the stand-in scripts, CE's users, and the plugins and
# repos trees core ships at /opt/netskope, with git's read-only pack files.
set -euo pipefail
rootfs=""
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

install -d "${rootfs}/opt/standin" "${rootfs}/opt/ui" "${rootfs}/data/db"
install -m 0644 "${here}"/*.py "${rootfs}/opt/standin/"
install -m 0755 "${here}/docker-entrypoint.sh" "${rootfs}/usr/local/bin/docker-entrypoint.sh"
printf '#!/bin/sh\n# STAND-IN for mongosh (see /opt/standin/mongosh.py)\nexec python3 /opt/standin/mongosh.py "$@"\n' \
  >"${rootfs}/usr/local/bin/mongosh"
chmod 0755 "${rootfs}/usr/local/bin/mongosh"
# mongod itself on PATH, as in the mongo image: mongo-start.sh runs it for its temporary server.
printf '#!/bin/sh\n# STAND-IN for mongod (see /opt/standin/mongod.py)\nexec python3 /opt/standin/mongod.py "$@"\n' \
  >"${rootfs}/usr/local/bin/mongod"
chmod 0755 "${rootfs}/usr/local/bin/mongod"
install -m 0755 "${here}/start-core.sh" "${rootfs}/opt/start.sh"
install -m 0755 "${here}/start-ui.sh" "${rootfs}/opt/ui/start.sh"
printf 'These images are STAND-INS built from Debian packages, not Cloud Exchange.\n' >"${rootfs}/STAND-IN"

# CE's service user (the access points' uid) and the mongodb user the task definition names.
groupadd -g 1001 ce
useradd -u 1001 -g 1001 -d /home/ce -m -s /bin/bash ce
useradd --system --user-group -d /data/db -s /usr/sbin/nologin mongodb
# RabbitMQ's home (the Erlang cookie) and log folder, writable by the task's user 1001.
chown -R 1001:1001 /var/lib/rabbitmq /var/log/rabbitmq /opt/ui
chown mongodb:mongodb /data/db

# The plugins and repos trees core ships: plain files, a custom_plugins folder the seed skips,
# and git repositories whose objects are packed (git writes pack files 0444).
plugins="${rootfs}/opt/netskope/plugins"
repos="${rootfs}/opt/netskope/repos"
install -d "${plugins}/netskope_stand_in" "${plugins}/custom_plugins" "$repos"
printf '"""A stand-in plugin."""\nNAME = "stand-in"\n' >"${plugins}/netskope_stand_in/main.py"
printf '{"name": "stand-in", "version": "1.0.0"}\n' >"${plugins}/netskope_stand_in/manifest.json"
for repo in "${repos}/Default" "${plugins}/netskope_stand_in/vendor"; do
  git init -q -b main "$repo"
  printf 'stand-in content of %s\n' "$(basename "$repo")" >"${repo}/README"
  git -C "$repo" add README
  git -C "$repo" -c user.name=stand-in -c user.email=stand-in@localhost commit -q -m "stand-in"
  git -C "$repo" gc -q
done
chown -R 1001:1001 "${rootfs}/opt/netskope"
