# shellcheck shell=bash disable=SC2034 # variables here are used by the sourcing scripts
# deploy/local/lib.sh — shared helpers for deploy/local/{up,down,env}. Sourced, never executed.
#
# Services (all on 127.0.0.1, state under $ATHENS_HOME, default <repo>/.athens):
#   pg  PostgreSQL cluster      port $ATHENS_PG_PORT (54329)  data $ATHENS_HOME/pg
#   es  Elasticsearch 7.10.2    port $ATHENS_ES_PORT (9207)   data $ATHENS_HOME/es
#   os  OpenSearch 2.19.1       port $ATHENS_OS_PORT (9208)   data $ATHENS_HOME/os
#   os3 OpenSearch 3.8.0        port $ATHENS_OS3_PORT (9209)  data $ATHENS_HOME/os3  (Java 21+)
#   tls nginx in front of es: HTTPS with our own CA, basic auth or an API key
#                               port $ATHENS_TLS_PORT (9443)  state $ATHENS_HOME/tls
# The engines are JVMs launched from the Maven modules in deploy/local/engines.
#
# Tunables (environment):
#   ATHENS_HOME, ATHENS_PG_PORT, ATHENS_ES_PORT, ATHENS_OS_PORT, ATHENS_OS3_PORT, ATHENS_TLS_PORT
#   ATHENS_JAVA            java binary for the engines (default: java on PATH)
#   ATHENS_ES_JAVA / ATHENS_OS_JAVA / ATHENS_OS3_JAVA   per-engine override of ATHENS_JAVA; os3
#                          needs Java 21+ and defaults to the newest such JDK under /usr/lib/jvm
#                          when the default java is older
#   ATHENS_ENGINE_HEAP     JVM heap of each engine (default 1g)
#   ATHENS_MVN             Maven binary that fetches and compiles the engine launchers (default mvn)
#   ATHENS_ENGINE_JAVA_OPTS  extra JVM options for every engine (default -XX:TieredStopAtLevel=1:
#                          faster start-up; set it to "" for the full JIT)
#   ATHENS_START_TIMEOUT   seconds to wait for each engine to become healthy (default 180)
#   ATHENS_SERVICES        default service list when no argument is given (default "pg es os os3 tls")

LOCAL_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$LOCAL_DIR/../.." && pwd)
ENGINES_DIR=$LOCAL_DIR/engines

ATHENS_HOME=${ATHENS_HOME:-$REPO_ROOT/.athens}
case $ATHENS_HOME in /*) ;; *) ATHENS_HOME=$PWD/$ATHENS_HOME ;; esac
ATHENS_PG_PORT=${ATHENS_PG_PORT:-54329}
ATHENS_ES_PORT=${ATHENS_ES_PORT:-9207}
ATHENS_OS_PORT=${ATHENS_OS_PORT:-9208}
ATHENS_OS3_PORT=${ATHENS_OS3_PORT:-9209}
ATHENS_TLS_PORT=${ATHENS_TLS_PORT:-9443}
ATHENS_ENGINE_HEAP=${ATHENS_ENGINE_HEAP:-1g}
ATHENS_MVN=${ATHENS_MVN:-mvn}
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

ALL_SERVICES=(pg es os os3 tls)
ENGINES=(es os os3)             # the JVM services, in start order

log() { printf '[athens-local] %s\n' "$*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}

# apt_get ARGS... — apt-get, one at a time across the scripts (the test script installs tools while
# up may install PostgreSQL): a second apt-get would fail on dpkg's lock instead of waiting.
apt_get() { flock -w 900 /tmp/athens-apt.lock env DEBIAN_FRONTEND=noninteractive apt-get "$@"; }

# now_s: wall clock in seconds with decimals; elapsed_since T: seconds since T, 1 decimal.
now_s() { printf '%s' "${EPOCHREALTIME:-$(date +%s.%N)}"; }
elapsed_since() { awk -v a="$1" -v b="$(now_s)" 'BEGIN { printf "%.1f", b - a }'; }

# parse_services ARGS... — sets SERVICES from arguments (pg|es|os|os3|tls|all), else $ATHENS_SERVICES,
# else all. Other arguments are left in REST_ARGS for the caller.
parse_services() {
    SERVICES=()
    REST_ARGS=()
    local arg
    for arg in "$@"; do
        case $arg in
            pg | es | os | os3 | tls) SERVICES+=("$arg") ;;
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

# engine_main NAME — the launcher class of an engine (es|os|os3; os3 runs the os launcher).
engine_main() {
    case $1 in
        es) echo athens.local.EsMain ;;
        os | os3) echo athens.local.OsMain ;;
    esac
}

engine_port() {
    case $1 in
        es) echo "$ATHENS_ES_PORT" ;;
        os) echo "$ATHENS_OS_PORT" ;;
        os3) echo "$ATHENS_OS3_PORT" ;;
    esac
}

# engine_min_java NAME — the oldest Java major version engine NAME runs on.
engine_min_java() {
    case $1 in
        os3) echo 21 ;;
        *) echo 11 ;;
    esac
}

# java_major JAVA — the major version of the java binary JAVA (empty when it does not run).
java_major() {
    local version major
    version=$("$1" -version 2>&1 | sed -n 's/.*version "\([^"]*\)".*/\1/p' | head -n 1)
    major=${version%%.*}
    [[ $major == 1 ]] && major=$(cut -d. -f2 <<<"$version")
    [[ $major =~ ^[0-9]+$ ]] && echo "$major"
}

# find_java NAME — prints the java binary for engine NAME: ATHENS_<NAME>_JAVA, else ATHENS_JAVA or
# java on PATH when new enough, else the newest new-enough JDK under /usr/lib/jvm. Fails, with
# the fix in one line, when there is none.
find_java() {
    local var=ATHENS_${1^^}_JAVA min java major candidate best='' best_major=0
    min=$(engine_min_java "$1")
    java=${!var:-}
    if [[ -n $java ]]; then
        command -v "$java" >/dev/null 2>&1 || {
            echo "$1: Java not found at $var='$java'; point it at a JDK $min+ java binary" >&2
            return 1
        }
        major=$(java_major "$java")
        ((${major:-0} >= min)) || {
            echo "$1: $var=$java is Java ${major:-unknown}; this engine needs Java $min+: point $var at a newer java" >&2
            return 1
        }
        echo "$java"
        return 0
    fi
    if [[ -n ${ATHENS_JAVA:-} ]]; then
        command -v "$ATHENS_JAVA" >/dev/null 2>&1 || {
            echo "$1: Java not found at ATHENS_JAVA='$ATHENS_JAVA'; point it at a JDK java binary" >&2
            return 1
        }
        if (($(java_major "$ATHENS_JAVA" || echo 0) >= min)); then
            echo "$ATHENS_JAVA"
            return 0
        fi
    fi
    if command -v java >/dev/null 2>&1 && (($(java_major java || echo 0) >= min)); then
        echo java
        return 0
    fi
    for candidate in /usr/lib/jvm/*/bin/java; do
        [[ -x $candidate ]] || continue
        major=$(java_major "$candidate") || continue
        if ((major >= min && major > best_major)); then
            best=$candidate best_major=$major
        fi
    done
    if [[ -n $best ]]; then
        echo "$best"
        return 0
    fi
    local install="apt-get install -y openjdk-17-jdk-headless"
    ((min <= 17)) || install="install a JDK $min+ under /usr/lib/jvm (Debian 12 packages none: e.g. Eclipse Temurin)"
    if command -v java >/dev/null 2>&1; then
        echo "$1: java on PATH is Java $(java_major java || echo unknown) and no JDK $min+ is under /usr/lib/jvm; this engine needs Java $min+: $install, or set $var" >&2
    else
        echo "$1: Java not found; $install, or set $var" >&2
    fi
    return 1
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
