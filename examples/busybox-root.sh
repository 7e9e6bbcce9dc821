#!/bin/sh
# Build a minimal jail root filesystem from busybox-static: bin/busybox and its applet
# links, procps' pkill/pgrep with the libraries they need (Debian's busybox has no
# pkill), /etc/passwd and /etc/group, and empty proc/, dev/, tmp/.
#   usage: busybox-root.sh DIR
set -eu
dir=${1:?usage: busybox-root.sh DIR}
bb=$(command -v busybox || true)
[ -n "$bb" ] || { echo "busybox is missing: apt-get install -y busybox-static" >&2; exit 1; }
if ldd "$bb" >/dev/null 2>&1; then echo "$bb is not static: apt-get install -y busybox-static" >&2; exit 1; fi
for t in pkill pgrep; do
    command -v $t >/dev/null || { echo "$t is missing: apt-get install -y procps" >&2; exit 1; }
done
mkdir -p "$dir/bin" "$dir/proc" "$dir/dev" "$dir/tmp" "$dir/etc" "$dir/root" "$dir/home/user" "$dir/var/run"
chmod 1777 "$dir/tmp"
cp "$bb" "$dir/bin/busybox"
for a in $("$bb" --list); do
    [ "$a" = busybox ] || ln -sf busybox "$dir/bin/$a"
done
for t in pkill pgrep; do
    src=$(command -v $t)
    rm -f "$dir/bin/$t"
    cp "$src" "$dir/bin/$t"
    for lib in $(ldd "$src" | awk '/=>/ { print $3; next } $1 ~ /^\// { print $1 }'); do
        mkdir -p "$dir$(dirname "$lib")"
        cp -L "$lib" "$dir$lib"
    done
done
cat > "$dir/etc/passwd" <<'PW'
root:x:0:0:root:/root:/bin/sh
www:x:80:80:web:/var/www:/bin/sh
user:x:1001:1001:user:/home/user:/bin/sh
other:x:1002:1002:other:/home/user:/bin/sh
nobody:x:65534:65534:nobody:/:/bin/false
PW
cat > "$dir/etc/group" <<'GR'
wheel:x:0:root
www:x:80:
staff:x:50:user
user:x:1001:
other:x:1002:
nogroup:x:65534:
GR
echo "inside-the-jail" > "$dir/etc/jail-marker"
# rc(8)-style start and stop scripts (jailctl's default exec_start / exec_stop)
cat > "$dir/etc/rc" <<'RC'
#!/bin/sh
# start: record it and run a small service
date +%s > /var/run/rc.started
hostname > /var/run/rc.hostname
sleep 86400 </dev/null >/dev/null 2>&1 &
exit 0
RC
cat > "$dir/etc/rc.shutdown" <<'RC'
#!/bin/sh
date +%s > /var/run/rc.stopped
exit 0
RC
chmod 755 "$dir/etc/rc" "$dir/etc/rc.shutdown"
