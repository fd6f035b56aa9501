#!/usr/bin/env bash
# docker-env.sh -- a private Docker engine, local base images and Compose v2 for the docker tests
#
# The docker tests (and a developer) run Docker on a machine that reaches no
# image registry: this script starts a dockerd of its own (Debian's docker.io)
# whose every file lives under one directory, makes the Debian base images the
# Dockerfiles expect from Debian's own packages (debootstrap), and builds the
# Compose v2 CLI from the Go module proxy. Each subcommand is idempotent and
# reuses its caches across runs. Run `docker-env.sh --help` for the interface.
set -euo pipefail

prog=docker-env.sh
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

cache=${KB_DOCKER_CACHE:-${HOME:-/root}/.cache/kyc-bridge/docker}
compose_version=${KB_COMPOSE_VERSION:-v5.6.0}
# Compose v5.6.0's go.mod says "go 1.26.8": the Go it needs, and the
# SHA-256 of that toolchain's zip on the Go module proxy (checked when
# fetched; golang.org/toolchain@v0.0.1-go1.26.8.linux-amd64).
go_needed=1.26.8
go_zip_sha256_amd64=30c2b1bf7dcc88d3eb0a1364e47ddd9128edb3110a30e8a0ef61cd5856b31de7
suite=bookworm
# The client: Debian's, from the same docker.io package as the daemon (see
# usage). /usr/local/bin/docker, if any, comes first on PATH: not used.
client=${KB_DOCKER_CLIENT:-/usr/bin/docker}

usage() {
        cat <<EOF
usage: $prog COMMAND [ARGS]

  dockerd start DIR   start a dockerd of our own, with a containerd of its own:
                      data roots DIR/data (containerd's DIR/data/containerd), run
                      state DIR/exec (sockets: DIR/docker.sock, DIR/exec/ctd.sock),
                      pidfiles DIR/dockerd.pid, DIR/containerd.pid, logs
                      DIR/dockerd.log, DIR/containerd.log. Prints the DOCKER_HOST
                      to use (unix://DIR/docker.sock) on stdout. Already running:
                      prints it again; running but not answering: stopped and
                      started anew. Installs docker.io with apt-get when dockerd
                      is missing.
  dockerd stop DIR    stop it (its containers, its containerd, their shims), delete
                      its networks' bridges and unmount what it left under DIR;
                      nothing of it keeps running. Not running: cleans up what a
                      crashed one left, else no-op.
  dockerd status DIR  exit 0 when it runs (and answers), 1 otherwise.
  dockerd pool DIR    print the address pool DIR's engine has, or reserve and print
                      the one it would get (released by \`dockerd stop DIR\`).
  env DIR             print shell assignments for this engine: DOCKER_HOST,
                      DOCKER_CONFIG (the compose plugin's config dir), KB_DOCKER
                      (the client to use), and PATH with that client first as
                      \`docker\`; eval "\$($prog env DIR)".
  run DIR CMD [ARG..] run CMD with that environment, and the chosen client first
                      on PATH as \`docker\`.
  base-images DIR     debian:$suite and debian:$suite-slim in that engine, imported
                      from a root file system debootstrap makes from Debian's packages
                      (variant minbase, the mirror this machine's apt uses); the
                      tarballs are cached. Skipped when the images are there.
  compose-plugin      build the Compose v2 CLI ($compose_version) from the Go module
                      proxy into the cache and install it as a CLI plugin in
                      DOCKER_CONFIG=<cache>/config. Skipped when built. Needs Go
                      $go_needed or later: the \`go\` on PATH when it is recent
                      enough, else the toolchain go$go_needed from the Go module
                      proxy (its zip's SHA-256 pinned here), kept in the cache.
  images DIR          build the project's images in that engine: kyc-bridge:local
                      (docker/Dockerfile, context .) and kyc-bridge-prometheus:local
                      (docker/prometheus), and kyc-bridge-kafka:local, the offline
                      stand-in for apache/kafka (docker/kafka/Dockerfile; its context,
                      with the Kafka jars of scripts/kafka.sh's caches, staged by
                      \`scripts/kafka.sh stage-image DIR/kafka-image\`), with the
                      host's network (the engine gives containers no way out, see
                      below). Layers are cached in DIR.

The engine: storage driver overlay2 (vfs where an overlay mount fails, or
KB_DOCKER_STORAGE), no registry mirrors, no iptables rules, no IP forwarding
and no default bridge (--bridge=none): it changes nothing on the host's network
and cannot disturb another dockerd. Its containerd is its own (a containerd
already running on the machine, /run/containerd/containerd.sock, which a
dockerd would otherwise share, is never used), its containers' cgroups are
under a parent of its own (kb-docker-<hash of DIR>). Ports are published on
127.0.0.1 only (--ip=127.0.0.1). Compose networks (user-defined bridges, /24s
from KB_DOCKER_POOL; default: a 10.X.0.0/16 chosen from the hash of DIR,
X in 200..249, the first one no address or route of the host uses and no
other engine of this script has reserved, in /run/kyc-bridge-docker-pools
under a lock, from its start to its stop) work
between containers; containers cannot reach outside, so image builds use
--network host. The caches are locked (flock) while they are written: two
runs at once wait for each other.
The client is Debian's /usr/bin/docker (KB_DOCKER_CLIENT), the same release as
the daemon (20.10): a newer client on PATH downgrades its API and has no buildx.

Environment: KB_DOCKER_CACHE (default ~/.cache/kyc-bridge/docker),
KB_DEBIAN_MIRROR (default: from /etc/apt/sources.list*), KB_COMPOSE_VERSION
(default v5.6.0), KB_DOCKER_STORAGE, KB_DOCKER_POOL, KB_DOCKER_CLIENT,
GOPROXY (the first entry is where the Go toolchain is fetched from).
EOF
}

die() {
        echo "$prog: $*" >&2
        exit 1
}
note() { echo "$prog: $*" >&2; }

# "cannot start dockerd: <reason>; this machine cannot run the docker tests"
cannot() {
        echo "$prog: cannot start dockerd: $*; this machine cannot run the docker tests" >&2
        exit 1
}

need_root() {
        [ "$(id -u)" = 0 ] || cannot "not root (dockerd, mounts and debootstrap need root)"
}

# apt_install PACKAGE COMMAND: install PACKAGE when COMMAND is missing.
apt_install() {
        command -v "$2" >/dev/null 2>&1 && return 0
        [ -x "$2" ] && return 0
        command -v apt-get >/dev/null 2>&1 || cannot "$2 missing and no apt-get to install $1"
        note "installing $1 (apt-get)"
        DEBIAN_FRONTEND=noninteractive nice apt-get install -y -q --no-install-recommends "$1" >&2 ||
                {
                        DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 &&
                                DEBIAN_FRONTEND=noninteractive nice apt-get install -y -q \
                                        --no-install-recommends "$1" >&2
                } || cannot "apt-get install $1 failed"
}

absdir() { # DIR: made, and absolute
        [ -n "${1:-}" ] || die "a directory is needed (see --help)"
        mkdir -p "$1"
        (cd "$1" && pwd)
}

# The caches are written by one run at a time: held until this process ends.
lock_cache() {
        mkdir -p "$cache"
        command -v flock >/dev/null || die "flock not found (util-linux)"
        exec 9>"$cache/.lock"
        if ! flock -n 9; then
                note "waiting for another run that writes $cache"
                flock -w 1800 9 || die "timed out waiting for $cache/.lock"
        fi
}

# The mount points under DIR/ (a function: `findmnt | grep -q` under
# pipefail fails when grep stops reading first).
mounts_under() { findmnt -rn -o TARGET | awk -v d="$1/" 'index($0, d) == 1' || true; }

# The engines' address pools: a file per reserved 10.X, naming the DIR that
# holds it, written under the lock .lock there.
pool_reg=${KB_DOCKER_POOL_REGISTRY:-/run/kyc-bridge-docker-pools}

# The address pool of DIR's networks: KB_DOCKER_POOL, else the one DIR has
# reserved, else 10.X.0.0/16 with X from the hash of DIR (200..249), the
# first one from there that no address or route of the host already uses
# (another engine's bridges included) and no other engine has reserved --
# reserved for DIR now, under the registry's lock, so that two engines
# started at once never pick the same (before either has a network, no
# route shows it). `dockerd stop` releases it. A network keeps the subnet
# it was made with. (Called in a $(subshell): the lock goes with it.)
address_pool() {
        local dir=$1 h x i used f
        if [ -n "${KB_DOCKER_POOL:-}" ]; then
                echo "$KB_DOCKER_POOL"
                return
        fi
        mkdir -p "$pool_reg"
        exec 7>"$pool_reg/.lock"
        flock -w 120 7 || die "timed out waiting for $pool_reg/.lock"
        for f in "$pool_reg"/10.*; do
                [ -e "$f" ] || continue
                # an engine whose directory is gone holds nothing
                [ -d "$(cat "$f")" ] || { rm -f "$f"; continue; }
                if [ "$(cat "$f")" = "$dir" ]; then
                        echo "${f##*/}.0.0/16"
                        return
                fi
        done
        h=$(printf '%s' "$dir" | sha256sum | cut -c1-4)
        used=$({ ip -4 -o addr show; ip -4 route show table all; } 2>/dev/null |
                grep -oE '(^|[^0-9.])10\.[0-9]+\.' | grep -oE '10\.[0-9]+' | sort -u || true)
        for i in $(seq 0 49); do
                x=$((200 + (16#$h + i) % 50))
                if ! grep -qx "10\.$x" <<<"$used" && [ ! -e "$pool_reg/10.$x" ]; then
                        printf '%s\n' "$dir" >"$pool_reg/10.$x"
                        echo "10.$x.0.0/16"
                        return
                fi
        done
        die "no free 10.X.0.0/16 (X in 200..249) for the engine's networks: set KB_DOCKER_POOL"
}

# Releases DIR's reservation (address_pool).
pool_release() {
        local f
        [ -d "$pool_reg" ] || return 0
        (
                exec 7>"$pool_reg/.lock"
                flock -w 120 7 || die "timed out waiting for $pool_reg/.lock"
                for f in "$pool_reg"/10.*; do
                        [ -e "$f" ] || continue
                        [ "$(cat "$f")" != "$1" ] || rm -f "$f"
                done
        )
}

# The containerd of DIR: its own, under DIR (see usage).
containerd_config() { # DIR
        cat <<EOF
version = 2
root = "$1/data/containerd/daemon"
state = "$1/exec/ctd"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$1/exec/ctd.sock"
[ttrpc]
  address = "$1/exec/ctd.sock.ttrpc"
[debug]
  address = ""
  level = "warn"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$1/data/containerd/opt"
EOF
}

containerd_start() { # DIR
        local dir=$1 i bg
        rm -f "$dir/exec/ctd.sock" "$dir/exec/ctd.sock.ttrpc" "$dir/containerd.pid"
        mkdir -p "$dir/exec" "$dir/data/containerd"
        containerd_config "$dir" >"$dir/exec/containerd.toml"
        setsid nice containerd --config "$dir/exec/containerd.toml" \
                </dev/null >"$dir/containerd.log" 2>&1 8>&- 9>&- &
        bg=$!
        echo "$bg" >"$dir/containerd.pid"
        for i in $(seq 1 120); do
                [ -S "$dir/exec/ctd.sock" ] && return 0
                if ! kill -0 "$bg" 2>/dev/null; then
                        tail -n 20 "$dir/containerd.log" >&2
                        cannot "containerd exited (log: $dir/containerd.log, last lines above)"
                fi
                sleep 0.25
        done
        tail -n 20 "$dir/containerd.log" >&2
        (dockerd_stop "$dir") >/dev/null 2>&1 || true
        cannot "containerd made no socket within 30 s (log: $dir/containerd.log)"
}

# The Go to build Compose with: `go` on PATH when it is $go_needed or
# later, else the toolchain from the Go module proxy, in the cache.
go_bin() {
        local have proxy arch zip dir=$cache/go$go_needed
        if command -v go >/dev/null 2>&1; then
                have=$(GOTOOLCHAIN=local go env GOVERSION 2>/dev/null || true)
                have=${have#go}
                if [ -n "$have" ] &&
                        [ "$(printf '%s\n%s\n' "$go_needed" "$have" | sort -V | head -n 1)" = "$go_needed" ]; then
                        command -v go
                        return
                fi
                note "go ${have:-?} on PATH is older than $go_needed (Compose $compose_version needs it)"
        fi
        if [ -x "$dir/bin/go" ]; then
                echo "$dir/bin/go"
                return
        fi
        case $(uname -m) in
        x86_64) arch=amd64 ;;
        *) die "no Go $go_needed here and no pinned toolchain for $(uname -m): install Go $go_needed or later" ;;
        esac
        proxy=${GOPROXY:-https://proxy.golang.org}
        proxy=${proxy%%,*}
        case $proxy in http://* | https://*) ;; *) proxy=https://proxy.golang.org ;; esac
        apt_install unzip unzip
        zip=$cache/go$go_needed.zip
        note "fetching Go $go_needed from $proxy (golang.org/toolchain, 72 MB)"
        curl -fsSL --retry 3 -o "$zip.tmp" \
                "$proxy/golang.org/toolchain/@v/v0.0.1-go$go_needed.linux-$arch.zip" ||
                die "cannot fetch Go $go_needed from $proxy"
        [ "$(sha256sum "$zip.tmp" | cut -c1-64)" = "$go_zip_sha256_amd64" ] ||
                die "the Go $go_needed zip from $proxy is not the one pinned in $prog (SHA-256 differs)"
        rm -rf "$dir.tmp"
        mkdir -p "$dir.tmp"
        unzip -q "$zip.tmp" -d "$dir.tmp" || die "cannot unpack $zip.tmp"
        mv "$dir.tmp/golang.org/toolchain@v0.0.1-go$go_needed.linux-$arch" "$dir"
        rm -rf "$dir.tmp" "$zip.tmp"
        # module zips keep no modes: the executables made executable again
        chmod +x "$dir"/bin/* "$dir"/pkg/tool/*/* || die "cannot chmod the Go toolchain in $dir"
        echo "$dir/bin/go"
}

# The engine in DIR answers?
answers() {
        [ -S "$1/docker.sock" ] &&
                DOCKER_HOST=unix://$1/docker.sock timeout 10 "$client" version \
                        --format '{{.Server.Version}}' >/dev/null 2>&1
}

# The pid of the dockerd of DIR, when it runs ("" otherwise).
dockerd_pid() {
        local p
        p=$(cat "$1/dockerd.pid" 2>/dev/null) || return 0
        [ -n "$p" ] && [ -r "/proc/$p/cmdline" ] || return 0
        # Ours: a dockerd with our exec root (a reused pid is not ours).
        { tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null | grep -qF -- "--exec-root $1/exec " &&
                echo "$p"
        return 0
}

# The cgroup parent of DIR's containers: one of its own (not the default
# "docker", which another dockerd would share), so that its containers'
# processes are found when a dockerd died and left them (a container's init
# outlives a killed shim).
cgparent() { echo "kb-docker-$(printf '%s' "$1" | sha256sum | cut -c1-12)"; }

# The cgroup directories of DIR's containers, deepest first. (The parent is
# made relative to dockerd's own cgroup in each hierarchy: not always at the
# top, e.g. memory:/process_api/<id>/kb-docker-<hash> here; on a cgroup v2
# host it may be /sys/fs/cgroup/kb-docker-<hash> itself, hence depth 1.)
our_cgroups() {
        local d
        find /sys/fs/cgroup -mindepth 1 -type d -name "$(cgparent "$1")" -prune -print 2>/dev/null |
                while read -r d; do
                        find "$d" -depth -type d
                done
}

# Pids of every process started for DIR: its dockerd, containerd, shims (our
# own paths in their command lines) and containers (our cgroup parent).
our_pids() {
        local p a g
        local -a args
        {
                for g in $(our_cgroups "$1"); do
                        cat "$g/cgroup.procs" 2>/dev/null || true
                done
                for p in /proc/[0-9]*; do
                        p=${p#/proc/}
                        # whole arguments under DIR/exec or DIR/data (not a
                        # substring: /var/tmp/e/exec is not /tmp/e's);
                        # 2>/dev/null first: a process may end meanwhile
                        mapfile -d '' -t args 2>/dev/null <"/proc/$p/cmdline" || continue
                        for a in "${args[@]}"; do
                                a=${a#*=}
                                case $a in
                                "$1/exec" | "$1/exec/"* | "$1/data" | "$1/data/"*)
                                        echo "$p"
                                        break
                                        ;;
                                esac
                        done
                done
        } | sort -un
}

storage_driver() { # DIR
        if [ -n "${KB_DOCKER_STORAGE:-}" ]; then
                echo "$KB_DOCKER_STORAGE"
                return
        fi
        # A data root keeps the driver it was made with.
        local d
        for d in overlay2 vfs; do
                if [ -d "$1/data/$d" ]; then
                        echo "$d"
                        return
                fi
        done
        local t=$1/overlay-probe
        rm -rf "$t"
        mkdir -p "$t/l" "$t/u" "$t/w" "$t/m"
        if mount -t overlay overlay -o "lowerdir=$t/l,upperdir=$t/u,workdir=$t/w" "$t/m" 2>/dev/null; then
                umount "$t/m"
                echo overlay2
        else
                note "an overlay mount fails here: storage driver vfs (slow, large)"
                echo vfs
        fi
        rm -rf "$t"
}

dockerd_start() {
        local dir p drv i pool
        dir=$(absdir "${1:-}")
        need_root
        p=$(dockerd_pid "$dir")
        if [ -n "$p" ] && answers "$dir"; then
                echo "unix://$dir/docker.sock"
                return 0
        fi
        if [ -n "$p" ]; then
                note "dockerd $p of $dir runs but does not answer: stopping it, starting anew"
                dockerd_stop "$dir"
        fi
        # What an engine of DIR that died left behind (containerd, shims,
        # container processes, mounts, bridges).
        if [ -n "$(our_pids "$dir")" ] || [ -n "$(mounts_under "$dir")" ] || [ -n "$(stale_bridges "$dir")" ]; then
                note "cleaning up after an engine of $dir that is gone"
                dockerd_stop "$dir"
        fi
        # Unix socket paths are at most 107 bytes: the longest is dockerd's
        # DIR/exec/libnetwork/<12 hex>.sock (DIR + 34 bytes).
        [ ${#dir} -le 73 ] || cannot "$dir is too long for the engine's sockets (at most 73 characters)"
        apt_install docker.io /usr/sbin/dockerd
        [ -x "$client" ] || cannot "no docker client at $client"
        for i in dockerd containerd runc; do
                command -v "$i" >/dev/null || cannot "$i not found after installing docker.io"
        done
        if [ -z "$(ls -A /sys/fs/cgroup 2>/dev/null)" ]; then
                cannot "no cgroup file system at /sys/fs/cgroup"
        fi
        drv=$(storage_driver "$dir")
        pool=$(address_pool "$dir")
        mkdir -p "$dir/data" "$dir/exec"
        rm -f "$dir/docker.sock" "$dir/dockerd.pid"
        containerd_start "$dir"
        # setsid: not in the caller's process group, so a ^C there does not
        # stop the engine midway; `dockerd stop` does.
        setsid nice dockerd \
                --data-root "$dir/data" \
                --exec-root "$dir/exec" \
                --pidfile "$dir/dockerd.pid" \
                --host "unix://$dir/docker.sock" \
                --containerd "$dir/exec/ctd.sock" \
                --storage-driver "$drv" \
                --iptables=false --ip-forward=false --ip-masq=false --ip6tables=false \
                --bridge=none --ip=127.0.0.1 \
                --default-address-pool "base=$pool,size=24" \
                --cgroup-parent "$(cgparent "$dir")" \
                --userland-proxy=true \
                --log-level warn \
                </dev/null >"$dir/dockerd.log" 2>&1 8>&- 9>&- &
        local bg=$! end=$((SECONDS + 30))
        while [ "$SECONDS" -lt "$end" ]; do
                answers "$dir" && break
                if ! kill -0 "$bg" 2>/dev/null; then
                        tail -n 20 "$dir/dockerd.log" >&2
                        # its containerd goes too (a subshell: dockerd_stop may exit)
                        (dockerd_stop "$dir") >/dev/null 2>&1 || true
                        cannot "dockerd exited (log: $dir/dockerd.log, last lines above)"
                fi
                sleep 0.25
        done
        if ! answers "$dir"; then
                tail -n 20 "$dir/dockerd.log" >&2
                (dockerd_stop "$dir") >/dev/null 2>&1 || true
                cannot "dockerd did not answer within 30 s (log: $dir/dockerd.log)"
        fi
        note "dockerd $(cat "$dir/dockerd.pid") on unix://$dir/docker.sock (storage $drv, containerd $(cat "$dir/containerd.pid"), networks from $pool)"
        echo "unix://$dir/docker.sock"
}

# The Linux bridges of the engine's bridge networks (none when it is down).
bridges() { # DIR
        local id name
        DOCKER_HOST=unix://$1/docker.sock "$client" network ls -q --no-trunc \
                --filter driver=bridge | while read -r id; do
                name=$(DOCKER_HOST=unix://$1/docker.sock "$client" network inspect -f \
                        '{{index .Options "com.docker.network.bridge.name"}}' "$id")
                echo "${name:-br-${id:0:12}}"
        done
}

# The Linux bridges of DIR's networks that exist while no dockerd of DIR
# manages them: br-<first 12 hex of a network id> of a network in DIR's
# network store (network ids are random: another engine's never match).
stale_bridges() { # DIR
        local kv=$1/data/network/files/local-kv.db b
        [ -f "$kv" ] || return 0
        for b in /sys/class/net/br-*; do
                [ -e "$b" ] || continue
                b=${b##*/}
                [[ ${b#br-} =~ ^[0-9a-f]{12}$ ]] || continue
                if grep -qaF "${b#br-}" "$kv"; then
                        echo "$b"
                fi
        done
}

dockerd_stop() {
        local dir p i left m
        dir=$(absdir "${1:-}")
        p=$(dockerd_pid "$dir")
        # Its networks' bridges outlive it: noted now, deleted once it is gone.
        : >"$dir/bridges"
        if [ -n "$p" ] && answers "$dir"; then
                bridges "$dir" >"$dir/bridges" || true
        fi
        if [ -n "$p" ]; then
                # dockerd stops its containers (10 s each at most) and its containerd.
                kill -TERM "$p" 2>/dev/null || true
                # a stopped (SIGSTOP) dockerd acts on it once continued
                kill -CONT "$p" 2>/dev/null || true
                for i in $(seq 1 240); do
                        [ -d "/proc/$p" ] || break
                        sleep 0.25
                done
                if [ -d "/proc/$p" ]; then
                        note "dockerd $p still runs after 60 s: SIGKILL"
                        kill -KILL "$p" 2>/dev/null || true
                fi
        fi
        # Its containerd (which leaves the shims of running containers: none
        # once dockerd has stopped them; else they are among what is left).
        p=$(cat "$dir/containerd.pid" 2>/dev/null || true)
        if [ -n "$p" ] && [ -r "/proc/$p/cmdline" ] &&
                tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -F -- "$dir/exec/containerd.toml" >/dev/null; then
                kill -TERM "$p" 2>/dev/null || true
                for i in $(seq 1 80); do
                        [ -d "/proc/$p" ] || break
                        sleep 0.25
                done
        fi
        # Whatever it left (a containerd, shims, container processes).
        left=$(our_pids "$dir")
        if [ -n "$left" ]; then
                note "stopping what dockerd left: $(paste -sd' ' <<<"$left")"
                # shellcheck disable=SC2086 # a list of pids
                kill -TERM $left 2>/dev/null || true
                sleep 2
                left=$(our_pids "$dir")
                # shellcheck disable=SC2086
                [ -z "$left" ] || kill -KILL $left 2>/dev/null || true
                sleep 0.5
        fi
        # Its containers' cgroups (empty now; the kernel frees a killed
        # process's cgroup a moment after it exits).
        for i in 1 2 3 4 5 6 7 8 9 10; do
                for m in $(our_cgroups "$dir"); do
                        rmdir "$m" 2>/dev/null || true
                done
                [ -n "$(our_cgroups "$dir")" ] || break
                sleep 0.5
        done
        # Mounts under DIR (overlays, network namespaces, shm), deepest first.
        for m in $(mounts_under "$dir" | sort -r); do
                umount -l "$m" 2>/dev/null || true
        done
        local b
        stale_bridges "$dir" >>"$dir/bridges"
        while read -r b; do
                if [ -n "$b" ] && [ -e "/sys/class/net/$b" ]; then
                        ip link delete "$b" 2>/dev/null || note "cannot delete the bridge $b"
                fi
        done < <(sort -u "$dir/bridges")
        rm -f "$dir/docker.sock" "$dir/dockerd.pid" "$dir/containerd.pid" "$dir/bridges"
        left=$(our_pids "$dir")
        [ -z "$left" ] || die "processes of $dir still run: $(paste -sd' ' <<<"$left")"
        if [ -n "$(our_cgroups "$dir")" ]; then
                die "cgroups of $dir remain: $(our_cgroups "$dir" | paste -sd' ')"
        fi
        if [ -n "$(mounts_under "$dir")" ]; then
                die "mounts under $dir remain: $(mounts_under "$dir" | paste -sd' ')"
        fi
        if [ -n "$(stale_bridges "$dir")" ]; then
                die "bridges of $dir remain: $(stale_bridges "$dir" | paste -sd' ')"
        fi
        # The exec root is run-time state only (pidfiles, sockets).
        rm -rf "$dir/exec"
        pool_release "$dir"
        return 0
}

engine_env() { # DIR: the environment for the engine of DIR
        local dir=$1
        export DOCKER_HOST=unix://$dir/docker.sock
        export DOCKER_CONFIG=$cache/config
        export KB_DOCKER=$client
        mkdir -p "$cache/config" "$cache/bin"
        ln -sfn "$client" "$cache/bin/docker"
        answers "$dir" || die "no dockerd answers on $DOCKER_HOST: $prog dockerd start $dir"
}

# The Debian mirror this machine's apt uses (deb822 or one-line sources).
debian_mirror() {
        if [ -n "${KB_DEBIAN_MIRROR:-}" ]; then
                echo "$KB_DEBIAN_MIRROR"
                return
        fi
        local f m=
        for f in /etc/apt/sources.list.d/*.sources; do
                [ -r "$f" ] || continue
                m=$(awk -v s="$suite" '
                        /^[ \t]*$/ { if (u != "" && ok) { print u; exit } u = ""; ok = 0; next }
                        /^URIs:/ { u = $2 }
                        /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == s) ok = 1 }
                        END { if (u != "" && ok) print u }' "$f" | head -n 1)
                [ -z "$m" ] || break
        done
        if [ -z "$m" ]; then
                m=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
                        awk -v s="$suite" '$1 == "deb" && $0 ~ " " s " " {
                                for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }' |
                        head -n 1)
        fi
        echo "${m:-http://deb.debian.org/debian}"
}

# The bookworm root file systems: <cache>/debian-bookworm.tar (minbase) and
# <cache>/debian-bookworm-slim.tar (the same without documentation, man
# pages and locales, and dpkg told not to install them, like Docker's
# official -slim images).
make_rootfs() {
        local mirror=$1 root tar=$cache/debian-$suite.tar slim=$cache/debian-$suite-slim.tar
        local sec
        if [ -s "$tar" ] && [ -s "$slim" ] && [ -s "$tar.sha256" ] && [ -s "$slim.sha256" ]; then
                return 0
        fi
        need_root
        apt_install debootstrap debootstrap
        root=$cache/rootfs.tmp
        rm -rf "$root"
        mkdir -p "$root"
        note "debootstrap --variant=minbase $suite from $mirror (a few minutes)"
        nice debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
                {
                        tail -n 20 "$cache/debootstrap.log" >&2
                        die "debootstrap failed (log: $cache/debootstrap.log)"
                }
        # Sources as in the official image: the suite, its updates, security.
        sec=${mirror%/debian}/debian-security
        [ "$sec" != "$mirror/debian-security" ] || sec=http://deb.debian.org/debian-security
        rm -f "$root/etc/apt/sources.list"
        cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $sec
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
        cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
        echo 'Acquire::Languages "none";' >"$root/etc/apt/apt.conf.d/docker-no-languages"
        rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin \
                "$root"/var/cache/apt/archives/*.deb "$root"/var/log/* "$root"/tmp/* \
                "$root/debootstrap"
        : >"$root/etc/machine-id"
        tar -C "$root" --numeric-owner -cf "$tar.tmp" . && mv "$tar.tmp" "$tar"
        # -slim
        cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
EOF
        find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
        find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
        rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/* \
                "$root"/usr/share/lintian/*
        tar -C "$root" --numeric-owner -cf "$slim.tmp" . && mv "$slim.tmp" "$slim"
        rm -rf "$root"
        sha256sum "$tar" | cut -c1-64 >"$tar.sha256"
        sha256sum "$slim" | cut -c1-64 >"$slim.sha256"
}

base_images() {
        local dir t tag sum have
        dir=$(absdir "${1:-}")
        engine_env "$dir"
        lock_cache
        make_rootfs "$(debian_mirror)"
        for t in "$suite" "$suite-slim"; do
                tag=debian:$t
                sum=$(cat "$cache/debian-$t.tar.sha256")
                have=$("$client" image inspect --format '{{index .Config.Labels "org.kyc-bridge.rootfs"}}' \
                        "$tag" 2>/dev/null || true)
                if [ "$have" = "$sum" ]; then
                        continue
                fi
                note "docker import $cache/debian-$t.tar as $tag"
                "$client" import \
                        --change 'CMD ["bash"]' \
                        --change "LABEL org.kyc-bridge.rootfs=$sum" \
                        --message "debootstrap --variant=minbase $suite (scripts/docker-env.sh)" \
                        "$cache/debian-$t.tar" "$tag" >/dev/null
        done
}

compose_plugin() {
        local bin=$cache/compose-$compose_version/docker-compose tmp go
        lock_cache
        mkdir -p "$cache/config/cli-plugins"
        if [ ! -x "$bin" ]; then
                go=$(go_bin)
                note "Go: $go ($("$go" env GOVERSION))"
                tmp=$(mktemp -d)
                note "building Compose $compose_version from the Go module proxy (several minutes cold)"
                (
                        cd "$tmp"
                        export GOTOOLCHAIN=local GOMAXPROCS=2 GOFLAGS=-mod=mod CGO_ENABLED=0
                        "$go" mod init x >/dev/null 2>&1
                        nice "$go" get "github.com/docker/compose/v5@$compose_version"
                        mkdir -p "${bin%/*}"
                        nice "$go" build -p 2 -trimpath \
                                -ldflags "-s -w -X github.com/docker/compose/v5/internal.Version=$compose_version" \
                                -o "$bin.tmp" github.com/docker/compose/v5/cmd
                        mv "$bin.tmp" "$bin"
                ) >"$cache/compose-build.log" 2>&1 || {
                        rm -rf "$tmp"
                        tail -n 20 "$cache/compose-build.log" >&2
                        die "building Compose $compose_version failed (log: $cache/compose-build.log)"
                }
                rm -rf "$tmp"
        fi
        ln -sfn "$bin" "$cache/config/cli-plugins/docker-compose"
        DOCKER_CONFIG=$cache/config "$client" compose version >/dev/null 2>&1 ||
                die "$client does not see the plugin $cache/config/cli-plugins/docker-compose"
        echo "DOCKER_CONFIG=$cache/config"
}

project_images() {
        local dir
        dir=$(absdir "${1:-}")
        engine_env "$dir"
        cd "$here"
        nice "$client" build --network host -f docker/Dockerfile --target runtime -t kyc-bridge:local . ||
                die "docker build of kyc-bridge:local (docker/Dockerfile) failed"
        nice "$client" build --network host -t kyc-bridge-prometheus:local docker/prometheus ||
                die "docker build of kyc-bridge-prometheus:local (docker/prometheus) failed"
        # The offline stand-in for apache/kafka (docker/docker-compose.offline.yml):
        # its build context is staged outside the repository, jars included.
        bash "$here/scripts/kafka.sh" stage-image "$dir/kafka-image" >/dev/null ||
                die "scripts/kafka.sh stage-image $dir/kafka-image failed"
        nice "$client" build --network host -t kyc-bridge-kafka:local "$dir/kafka-image" ||
                die "docker build of kyc-bridge-kafka:local (docker/kafka/Dockerfile, context $dir/kafka-image) failed"
        # a rebuild leaves the image it replaced dangling: not kept
        "$client" image prune -f >/dev/null ||
                die "docker image prune failed"
        local i
        for i in kyc-bridge:local kyc-bridge-kafka:local; do
                "$client" image inspect --format '{{.Size}}' "$i" |
                        awk -v i="$i" '{ printf "%s: %d bytes (%.1f MB)\n", i, $1, $1 / 1e6 }'
        done
}

cmd=${1:-}
[ $# -eq 0 ] || shift
case $cmd in
-h | --help | help)
        usage
        ;;
dockerd)
        sub=${1:-}
        [ $# -eq 0 ] || shift
        # one start or stop of an engine at a time (the engine's own
        # processes do not keep the lock: 8>&- where they start)
        if [ "$sub" = start ] || [ "$sub" = stop ]; then
                d=$(absdir "${1:-}")
                exec 8>"$d/.lock"
                flock -w 600 8 || die "timed out waiting for another start or stop of $d"
        fi
        case $sub in
        start) dockerd_start "${1:-}" ;;
        stop) dockerd_stop "${1:-}" ;;
        status)
                dir=$(absdir "${1:-}")
                [ -n "$(dockerd_pid "$dir")" ] && answers "$dir"
                ;;
        pool)
                dir=$(absdir "${1:-}")
                need_root
                address_pool "$dir"
                ;;
        *) die "dockerd start|stop|status|pool DIR (see --help)" ;;
        esac
        ;;
env)
        dir=$(absdir "${1:-}")
        mkdir -p "$cache/bin"
        ln -sfn "$client" "$cache/bin/docker"
        printf 'export DOCKER_HOST=%q\nexport DOCKER_CONFIG=%q\nexport KB_DOCKER=%q\n' \
                "unix://$dir/docker.sock" "$cache/config" "$client"
        # shellcheck disable=SC2016 # $PATH: expanded by the shell that evals this
        printf 'export PATH=%q:"$PATH"\n' "$cache/bin"
        ;;
run)
        dir=$(absdir "${1:-}")
        shift || true
        [ $# -gt 0 ] || die "run DIR CMD [ARG...] (see --help)"
        engine_env "$dir"
        PATH=$cache/bin:$PATH exec "$@"
        ;;
base-images) base_images "${1:-}" ;;
compose-plugin) compose_plugin ;;
images) project_images "${1:-}" ;;
"") usage >&2 && exit 2 ;;
*) die "unknown command '$cmd' (see --help)" ;;
esac
