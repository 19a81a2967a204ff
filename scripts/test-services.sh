#!/usr/bin/env bash
# Start, stop or inspect the services the `docker`-marked tests need: a private Docker daemon and a
# local OCI registry (Debian's docker.io and docker-registry packages), both on this machine only.
#
#   scripts/test-services.sh start    # idempotent; prints `export ...` lines and writes them to $DIR/env
#   scripts/test-services.sh status   # exit 0 when both answer, 1 otherwise
#   scripts/test-services.sh env      # print the env lines of a running set
#   scripts/test-services.sh stop     # kill both by pidfile and delete their state
#
# Use it as `source <(scripts/test-services.sh start)` or run it and then
# `set -a; source "$DEX_TEST_SERVICES_DIR/env"; set +a`. The tests also read $DIR/env themselves
# (tests/docker_fixtures.py), so a plain `start` in another shell is enough for local runs.
#
# DEX_TEST_SERVICES_DIR  state directory (default: ${TMPDIR:-/tmp}/dex-test-services). Keep it short:
#                        the daemon's unix sockets live under it (108-byte sun_path limit).
# DEX_TEST_REGISTRY_PORT registry port on 127.0.0.1 (default: a free port)
#
# Needs root (dockerd). Flags that work in an unprivileged CI container: vfs storage (no overlayfs),
# no iptables and no bridge (containers get no network; builds of FROM-scratch images need none).
# Pushing to 127.0.0.1:PORT over plain HTTP works because dockerd treats 127.0.0.0/8 as an insecure
# registry by default.
set -euo pipefail

DIR="${DEX_TEST_SERVICES_DIR:-${TMPDIR:-/tmp}/dex-test-services}"
WAIT_SECONDS="${DEX_TEST_SERVICES_WAIT:-60}"

log() { echo "test-services: $*" >&2; }
die() { log "error: $*"; exit 1; }

alive() { # alive PIDFILE: the process named in PIDFILE is running
  [[ -s "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null
}

docker_answers() {
  DOCKER_HOST="unix://$DIR/docker.sock" timeout 10 docker version --format '{{.Server.Version}}' >/dev/null 2>&1
}

registry_answers() { # the v2 API root answers 200 when the registry is up
  local port
  port="$(cat "$DIR/registry.port" 2>/dev/null)" || return 1
  # python3 rather than curl: a minimal CI image has python (the project needs it) but maybe no curl.
  python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=5).close()' \
    "http://127.0.0.1:$port/v2/" 2>/dev/null
}

env_lines() {
  echo "DOCKER_HOST=unix://$DIR/docker.sock"
  echo "DEX_TEST_REGISTRY=127.0.0.1:$(cat "$DIR/registry.port")"
  echo "DEX_TEST_SERVICES_DIR=$DIR"
}

wait_for() { # wait_for WHAT CHECK PIDFILE LOG: bounded wait until CHECK succeeds
  local what="$1" check="$2" pidfile="$3" logfile="$4" i
  for ((i = 0; i < WAIT_SECONDS * 2; i++)); do
    if "$check"; then
      log "$what is up"
      return 0
    fi
    if ! alive "$pidfile"; then
      tail -n 20 "$logfile" >&2 || true
      die "$what exited during start-up (log: $logfile)"
    fi
    sleep 0.5
  done
  tail -n 20 "$logfile" >&2 || true
  die "$what did not answer within ${WAIT_SECONDS}s (log: $logfile)"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_docker() {
  if alive "$DIR/docker.pid" && docker_answers; then
    log "docker daemon already running (pid $(cat "$DIR/docker.pid"))"
    return 0
  fi
  [[ "$(id -u)" == 0 ]] || die "dockerd needs root (run as root, e.g. in CI)"
  command -v dockerd >/dev/null || die "dockerd not found: apt-get install -y docker.io"
  mkdir -p "$DIR/docker-data" "$DIR/docker-exec"
  rm -f "$DIR/docker.sock" "$DIR/docker.pid" "$DIR/dockerd.pid"
  log "starting dockerd (log: $DIR/dockerd.log)"
  # setsid: the daemon must outlive this script and not get the caller's Ctrl-C.
  setsid dockerd \
    --storage-driver=vfs --iptables=false --ip-masq=false --bridge=none \
    --data-root="$DIR/docker-data" --exec-root="$DIR/docker-exec" \
    --pidfile="$DIR/dockerd.pid" --host="unix://$DIR/docker.sock" \
    >"$DIR/dockerd.log" 2>&1 </dev/null &
  # dockerd writes its own pidfile (dockerd.pid) only once it is initialised, and refuses to start
  # when that file names a live process; so our pidfile is a separate one, written now, so that a
  # daemon that dies early or hangs can still be stopped.
  echo $! >"$DIR/docker.pid"
  wait_for "docker daemon" docker_answers "$DIR/docker.pid" "$DIR/dockerd.log"
}

start_registry() {
  if alive "$DIR/registry.pid" && registry_answers; then
    log "registry already running on 127.0.0.1:$(cat "$DIR/registry.port")"
    return 0
  fi
  command -v docker-registry >/dev/null || die "docker-registry not found: apt-get install -y docker-registry"
  local port="${DEX_TEST_REGISTRY_PORT:-$(free_port)}"
  mkdir -p "$DIR/registry-data"
  echo "$port" >"$DIR/registry.port"
  cat >"$DIR/registry.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $DIR/registry-data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
EOF
  log "starting registry on 127.0.0.1:$port (log: $DIR/registry.log)"
  setsid docker-registry serve "$DIR/registry.yml" >"$DIR/registry.log" 2>&1 </dev/null &
  echo $! >"$DIR/registry.pid"
  wait_for "registry" registry_answers "$DIR/registry.pid" "$DIR/registry.log"
}

stop_pid() { # stop_pid NAME PIDFILE: TERM, bounded wait, then KILL
  local name="$1" pidfile="$2" pid i
  alive "$pidfile" || { rm -f "$pidfile"; return 0; }
  pid="$(cat "$pidfile")"
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 40; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name did not stop within 20s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

cmd_start() {
  mkdir -p "$DIR"
  start_docker
  start_registry
  env_lines >"$DIR/env"
  sed 's/^/export /' "$DIR/env"
}

cmd_status() {
  local ok=0
  if alive "$DIR/docker.pid" && docker_answers; then
    log "docker daemon: up (pid $(cat "$DIR/docker.pid"), unix://$DIR/docker.sock)"
  else
    log "docker daemon: down"
    ok=1
  fi
  if alive "$DIR/registry.pid" && registry_answers; then
    log "registry: up (pid $(cat "$DIR/registry.pid"), 127.0.0.1:$(cat "$DIR/registry.port"))"
  else
    log "registry: down"
    ok=1
  fi
  return "$ok"
}

cmd_stop() {
  [[ -d "$DIR" ]] || { log "nothing to stop in $DIR"; return 0; }
  stop_pid registry "$DIR/registry.pid"
  stop_pid dockerd "$DIR/docker.pid"
  rm -f "$DIR/env" "$DIR/docker.sock" "$DIR/dockerd.pid"
  # Images in vfs storage are full copies; do not leave them behind. Only our own subdirectories.
  rm -rf "$DIR/docker-data" "$DIR/docker-exec" "$DIR/registry-data"
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env)
    cmd_status >/dev/null 2>&1 || die "services are not running in $DIR (run: $0 start)"
    sed 's/^/export /' "$DIR/env"
    ;;
  *)
    echo "usage: $0 start|stop|status|env" >&2
    exit 2
    ;;
esac
