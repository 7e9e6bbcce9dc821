#!/bin/sh
# The whole story, end to end, on this machine (run as root):
#   build -> a busybox jail -> jaildaemon -D -> a probe in the jail ->
#   `pkill -HUP -f TITLE` run inside the jail -> the host command runs.
# Everything lives in a temporary directory (own socket, pidfile, jail registry)
# and is removed at the end.
set -eu
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "demo: run as root (jails need namespaces and mounts)" >&2; exit 1; }

echo "== building"
cargo=$(command -v cargo || echo /usr/bin/cargo)
"$cargo" build --release --quiet
bin=$(pwd)/target/release
work=$(mktemp -d /tmp/jaildaemon-demo.XXXXXX)
export JAILDAEMON_REGISTRY="$work/registry"
sock="$work/jaildaemon.pipe"
pidf="$work/jaildaemon.pid"
cleanup() {
    [ -f "$pidf" ] && kill "$(cat "$pidf")" 2>/dev/null || true
    "$bin/jailctl" jail remove demo 2>/dev/null || true
    sleep 0.3
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

echo "== a jail: busybox root in $work/root"
sh examples/busybox-root.sh "$work/root"
jid=$("$bin/jailctl" jail create name=demo path="$work/root" host.hostname=demo.jail persist)
"$bin/jailctl" jail list

echo "== the daemon"
"$bin/jaildaemon" -D -p "$pidf" -f "$sock" -s "$work/state/probes.json"
echo "jaildaemon running, pid $(cat "$pidf")"

echo "== a probe in jail demo (jid $jid)"
"$bin/jaildaemon" -c "echo \"host \$(hostname) ran this for jail \$JAILDAEMON_JAIL (jid \$JAILDAEMON_JID) at \$(date +%T)\" >> $work/host-command.log" \
    -j demo -r -t DEMO_TRIGGER -f "$sock"
"$bin/jaildaemon" -l -f "$sock"
echo "-- ps inside the jail:"
"$bin/jailctl" jail exec demo ps -o pid,user,args

echo "== inside the jail: pkill -HUP -f DEMO_TRIGGER"
"$bin/jailctl" jail exec demo pkill -HUP -f DEMO_TRIGGER
i=0
while [ ! -s "$work/host-command.log" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
echo "-- the host command ran:"
cat "$work/host-command.log"
[ -s "$work/host-command.log" ] || { echo "demo: FAILED, the command did not run" >&2; exit 1; }

sleep 0.5
echo "-- the probe was respawned (-r):"
"$bin/jailctl" jail exec demo pgrep -fl DEMO_TRIGGER || "$bin/jailctl" jail exec demo pgrep -f DEMO_TRIGGER
"$bin/jaildaemon" -l -f "$sock"
echo "demo: OK"
