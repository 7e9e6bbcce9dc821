#!/bin/sh
# Use case 1 of jaildaemon(8): a jail may ask the host to restart it.
#   usage: restart-jail.sh JAIL
# Registers a probe titled JAIL_REBOOT in JAIL. Inside the jail, `pkill -HUP -f
# JAIL_REBOOT` makes the host remove the jail and create it again with the same
# name, path and hostname; with -r the probe is re-armed in the new jail.
set -eu
jail=${1:?usage: restart-jail.sh JAIL}
jailctl=${JAILCTL:-jailctl}
jaildaemon=${JAILDAEMON:-jaildaemon}
path=$("$jailctl" jail get "$jail" path)
host=$("$jailctl" jail get "$jail" host.hostname)
exec "$jaildaemon" -c "$jailctl jail remove $jail && $jailctl jail create name=$jail path=$path host.hostname=$host persist" \
    -j "$jail" -r -t JAIL_REBOOT ${JAILDAEMON_SOCKET:+-f "$JAILDAEMON_SOCKET"}
