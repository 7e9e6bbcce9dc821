#!/bin/sh
# Use case 3 of jaildaemon(8): the simplest way to script an action is a wrapper
# script on the host, here one that reloads routing for a jail.
#   usage: routing-hook.sh JAIL [WRAPPER]
# WRAPPER (default /usr/local/sbin/update-routing) is run with the jail in
# $JAILDAEMON_JAIL each time a process in the jail runs `pkill -HUP -f UPDATE_ROUTING`.
# A sample wrapper is written if none exists: it logs the request and the routes.
set -eu
jail=${1:?usage: routing-hook.sh JAIL [WRAPPER]}
wrapper=${2:-/usr/local/sbin/update-routing}
jaildaemon=${JAILDAEMON:-jaildaemon}
if [ ! -e "$wrapper" ]; then
    mkdir -p "$(dirname "$wrapper")"
    cat > "$wrapper" <<'W'
#!/bin/sh
# Called by jaildaemon for a jail that asked for its routes to be reloaded.
logger -t update-routing "routing update requested by jail $JAILDAEMON_JAIL (jid $JAILDAEMON_JID)" 2>/dev/null || true
echo "$(date '+%F %T') routing update for jail $JAILDAEMON_JAIL"
ip route show 2>/dev/null || netstat -rn
W
    chmod 755 "$wrapper"
fi
exec "$jaildaemon" -c "$wrapper" -j "$jail" -r -t UPDATE_ROUTING ${JAILDAEMON_SOCKET:+-f "$JAILDAEMON_SOCKET"}
