#!/bin/sh
# Use case 2 of jaildaemon(8): a jail may ask for a snapshot of its file system.
#   usage: snapshot.sh JAIL
# Registers a respawning probe titled ZFS_SNAPSHOT. When the jail's path is a ZFS
# dataset, each trigger takes `zfs snapshot DATASET@jaildaemon-EPOCH`; otherwise the
# path is archived to $BACKUP_DIR/JAIL-EPOCH.tar.gz (default /var/backups/jails).
set -eu
jail=${1:?usage: snapshot.sh JAIL}
jailctl=${JAILCTL:-jailctl}
jaildaemon=${JAILDAEMON:-jaildaemon}
path=$("$jailctl" jail get "$jail" path)
if dataset=$(zfs list -H -o name "$path" 2>/dev/null) && [ -n "$dataset" ]; then
    cmd="zfs snapshot $dataset@jaildaemon-\$(date +%s)"
else
    backups=${BACKUP_DIR:-/var/backups/jails}
    cmd="mkdir -p $backups && tar -czf $backups/$jail-\$(date +%s%N).tar.gz -C $path ."
fi
exec "$jaildaemon" -c "$cmd" -j "$jail" -r -t ZFS_SNAPSHOT ${JAILDAEMON_SOCKET:+-f "$JAILDAEMON_SOCKET"}
