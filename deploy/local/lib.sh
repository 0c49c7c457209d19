# shellcheck shell=bash disable=SC2034 # variables here are used by the sourcing scripts
# deploy/local/lib.sh — shared helpers for deploy/local/{up,down,env}. Sourced, never executed.
#
# Services (all on 127.0.0.1, state under $ATHENS_HOME, default <repo>/.athens):
#   pg  PostgreSQL cluster      port $ATHENS_PG_PORT (54329)  data $ATHENS_HOME/pg
#   es  Elasticsearch 7.10.2    port $ATHENS_ES_PORT (9207)   data $ATHENS_HOME/es
#   os  OpenSearch 2.19.1       port $ATHENS_OS_PORT (9208)   data $ATHENS_HOME/os
#   tls nginx in front of es: HTTPS with our own CA, basic auth or an API key
#                               port $ATHENS_TLS_PORT (9443)  state $ATHENS_HOME/tls
# The two engines are JVMs launched from the Maven module in deploy/local/engines.
#
# Tunables (environment):
#   ATHENS_HOME, ATHENS_PG_PORT, ATHENS_ES_PORT, ATHENS_OS_PORT
#   ATHENS_JAVA            java binary for both engines (default: java on PATH)
#   ATHENS_ES_JAVA / ATHENS_OS_JAVA   per-engine override of ATHENS_JAVA
#   ATHENS_ENGINE_HEAP     JVM heap of each engine (default 1g)
#   ATHENS_ENGINE_JAVA_OPTS  extra JVM options for both engines (default -XX:TieredStopAtLevel=1:
#                          faster start-up; set it to "" for the full JIT)
#   ATHENS_START_TIMEOUT   seconds to wait for each engine to become healthy (default 180)
#   ATHENS_SERVICES        default service list when no argument is given (default "pg es os")

LOCAL_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$LOCAL_DIR/../.." && pwd)
ENGINES_DIR=$LOCAL_DIR/engines

ATHENS_HOME=${ATHENS_HOME:-$REPO_ROOT/.athens}
case $ATHENS_HOME in /*) ;; *) ATHENS_HOME=$PWD/$ATHENS_HOME ;; esac
ATHENS_PG_PORT=${ATHENS_PG_PORT:-54329}
ATHENS_ES_PORT=${ATHENS_ES_PORT:-9207}
ATHENS_OS_PORT=${ATHENS_OS_PORT:-9208}
ATHENS_TLS_PORT=${ATHENS_TLS_PORT:-9443}
ATHENS_ENGINE_HEAP=${ATHENS_ENGINE_HEAP:-1g}
ATHENS_START_TIMEOUT=${ATHENS_START_TIMEOUT:-180}

LOG_DIR=$ATHENS_HOME/logs
RUN_DIR=$ATHENS_HOME/run          # pid files of the engine JVMs
PG_DIR=$ATHENS_HOME/pg            # owned by the postgres OS user
PG_DATA=$PG_DIR/data
PG_SOCKET_DIR=$PG_DIR/run
PG_OS_USER=postgres               # OS user that runs the server when we are root
PG_SUPERUSER=postgres             # database superuser created by initdb
TLS_DIR=$ATHENS_HOME/tls          # CA, certificate, htpasswd and nginx state of the tls service
# Credentials the tls service checks (test fixtures, not secrets: loopback only).
TLS_USERNAME=athens
TLS_PASSWORD=tls-test-password
TLS_API_KEY=YXRoZW5zOnRscy10ZXN0LWtleQ==

ALL_SERVICES=(pg es os tls)

log() { printf '[athens-local] %s\n' "$*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}

# now_s: wall clock in seconds with decimals; elapsed_since T: seconds since T, 1 decimal.
now_s() { printf '%s' "${EPOCHREALTIME:-$(date +%s.%N)}"; }
elapsed_since() { awk -v a="$1" -v b="$(now_s)" 'BEGIN { printf "%.1f", b - a }'; }

# parse_services ARGS... — sets SERVICES from arguments (pg|es|os|all), else $ATHENS_SERVICES,
# else all. Other arguments are left in REST_ARGS for the caller.
parse_services() {
    SERVICES=()
    REST_ARGS=()
    local arg
    for arg in "$@"; do
        case $arg in
            pg | es | os | tls) SERVICES+=("$arg") ;;
            all) SERVICES+=("${ALL_SERVICES[@]}") ;;
            *) REST_ARGS+=("$arg") ;;
        esac
    done
    if ((${#SERVICES[@]} == 0)); then
        read -r -a SERVICES <<<"${ATHENS_SERVICES:-${ALL_SERVICES[*]}}"
    fi
}

wants() { [[ " ${SERVICES[*]} " == *" $1 "* ]]; }

# port_in_use PORT — true when something accepts TCP connections on 127.0.0.1:PORT.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# port_owner PORT — best-effort description of the listener on PORT.
port_owner() {
    if command -v ss >/dev/null 2>&1; then
        ss -Hltnp "sport = :$1" 2>/dev/null | sed 's/^/    /'
    fi
}

# with_lock CMD... — serialise concurrent up/down calls on the same ATHENS_HOME.
with_lock() {
    mkdir -p "$ATHENS_HOME"
    exec 9>"$ATHENS_HOME/.lock"
    if command -v flock >/dev/null 2>&1; then
        flock -w 600 9 || die "could not lock $ATHENS_HOME/.lock (another up/down is running?)"
    fi
    "$@"
}

# ---------------------------------------------------------------- PostgreSQL

# pg_bindir — prints the newest /usr/lib/postgresql/*/bin that has the server binaries.
pg_bindir() {
    local d
    for d in /usr/lib/postgresql/*/bin; do
        [[ -x $d/pg_ctl && -x $d/initdb && -x $d/postgres ]] && echo "$d"
    done | sort -V | tail -n 1 | grep .
}

# pg_as_owner CMD... — runs CMD as the OS user owning the cluster (postgres refuses root).
pg_as_owner() {
    if ((EUID == 0)); then
        runuser -u "$PG_OS_USER" -- "$@"
    else
        "$@"
    fi
}

pg_is_running() {
    [[ -f $PG_DATA/PG_VERSION ]] && pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1
}

# pg_running_port — the port written by the running postmaster (4th line of postmaster.pid).
pg_running_port() { sed -n 4p "$PG_DATA/postmaster.pid" 2>/dev/null; }

# pg_locate — sets PG_BIN, or leaves it empty when PostgreSQL is not installed.
pg_locate() { PG_BIN=$(pg_bindir || true); }

# ------------------------------------------------------------------- engines

# engine_main NAME — the launcher class of an engine (es|os).
engine_main() {
    case $1 in
        es) echo athens.local.EsMain ;;
        os) echo athens.local.OsMain ;;
    esac
}

engine_port() {
    case $1 in
        es) echo "$ATHENS_ES_PORT" ;;
        os) echo "$ATHENS_OS_PORT" ;;
    esac
}

engine_pidfile() { echo "$RUN_DIR/$1.pid"; }

# engine_pid NAME — prints the pid of the running engine JVM (checked against its command
# line, so a stale pid file whose pid was reused is ignored); fails when not running.
engine_pid() {
    local pidfile pid
    pidfile=$(engine_pidfile "$1")
    [[ -f $pidfile ]] || return 1
    pid=$(<"$pidfile")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    local cmdline
    cmdline=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || return 1
    [[ $cmdline == *" -Dathens.home=$ATHENS_HOME/$1 "*" $(engine_main "$1")"* ]] || return 1
    echo "$pid"
}

# stop_pid PID LABEL — SIGTERM, wait up to 30 s, then SIGKILL.
stop_pid() {
    local pid=$1 label=$2 i
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 60; i++)); do
        kill -0 "$pid" 2>/dev/null || {
            log "$label stopped (pid $pid)"
            return 0
        }
        sleep 0.5
    done
    log "$label did not stop after 30 s, killing pid $pid"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.5
}

# ----------------------------------------------------------------------- tls

# tls_pid — prints the pid of our nginx master; fails when it is not running.
tls_pid() {
    local pid
    [[ -f $TLS_DIR/nginx.pid ]] || return 1
    pid=$(<"$TLS_DIR/nginx.pid")
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}
