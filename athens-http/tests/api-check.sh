#!/usr/bin/env bash
# athens-http/tests/api-check.sh BASE_URL — black-box checks of a running Athens API, for CI:
#   1. schemathesis (PyPI, in a venv under $ATHENS_HOME/venv-schemathesis) fuzzes every operation of
#      BASE_URL/openapi.json, bounded in examples and time, and fails on any 5xx or any response
#      that does not match the spec (status code, content type, schema, headers);
#   2. headless Chromium (Debian's `chromium`) driven by playwright-core (npm, under
#      $ATHENS_HOME/node-playwright) opens BASE_URL/docs, runs a search from Swagger UI ("Try it
#      out" → "Execute"), asserts that projects appear in the response, and saves a screenshot to
#      $ATHENS_ARTIFACTS/swagger-ui.png;
#   3. the same Chromium opens the search page at BASE_URL/ (search-page-check.js): types a query
#      with a typo, checks the highlighted results and their creators, clicks a hashtag facet and
#      checks the results and count, pages, and checks the empty ("did you mean") and error states;
#      saves a screenshot to $ATHENS_ARTIFACTS/search-page.png.
# The API must serve data in which the hashtag $API_CHECK_HASHTAG (default `rust`) is used and the
# project `elasticsearch-sync` exists (the seed data of `athens seed` has both). Installs what is
# missing (python3-venv, chromium, nodejs via apt-get; schemathesis via pip; playwright-core via
# npm); needs network access to those registries then.
#
# `api-check.sh --install` only installs what is missing, and needs no API (deploy/local/test runs it
# while the workspace compiles).
#
# Tunables: ATHENS_HOME (default <repo>/.athens), ATHENS_ARTIFACTS (default $ATHENS_HOME/artifacts),
# API_CHECK_MAX_EXAMPLES (default 100 per operation), API_CHECK_MAX_SECONDS (default 300, the most
# schemathesis may take), API_CHECK_HASHTAG, API_CHECK_SKIP="schemathesis swagger page" (any subset).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
base=${1:?usage: api-check.sh BASE_URL (for example http://127.0.0.1:8080) | --install}
base=${base%/}
install_only=0
[[ $base == --install ]] && install_only=1
ATHENS_HOME=${ATHENS_HOME:-$repo/.athens}
ATHENS_ARTIFACTS=${ATHENS_ARTIFACTS:-$ATHENS_HOME/artifacts}
max_examples=${API_CHECK_MAX_EXAMPLES:-100}
max_seconds=${API_CHECK_MAX_SECONDS:-300}
hashtag=${API_CHECK_HASHTAG:-rust}
# Versions known to work here; bump deliberately.
schemathesis_version=4.32.5
playwright_version=1.65.1

log() { printf '[api-check] %s\n' "$*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}
skip() { [[ " ${API_CHECK_SKIP:-} " == *" $1 "* ]]; }
apt_install() {
    log "installing Debian packages: $*"
    if [[ -z ${apt_updated:-} ]]; then
        flock -w 900 /tmp/athens-apt.lock apt-get update -qq >&2
        apt_updated=1
    fi
    # One apt-get at a time across Athens' scripts (deploy/local/lib.sh apt_get).
    flock -w 900 /tmp/athens-apt.lock env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

mkdir -p "$ATHENS_HOME" "$ATHENS_ARTIFACTS"

# --- 1. schemathesis ------------------------------------------------------------------------------
venv=$ATHENS_HOME/venv-schemathesis
install_schemathesis() {
    if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "$schemathesis_version"; then
        python3 -m venv "$venv" 2>/dev/null || {
            apt_install python3-venv
            rm -rf "$venv"
            python3 -m venv "$venv"
        }
        log "installing schemathesis $schemathesis_version into $venv"
        "$venv/bin/pip" install -q --disable-pip-version-check "schemathesis==$schemathesis_version" >&2
    fi
}
run_schemathesis() {
    install_schemathesis
    log "schemathesis $("$venv/bin/schemathesis" --version | awk '{print $NF}') against $base/openapi.json"
    local report=$ATHENS_ARTIFACTS/schemathesis
    rm -rf "$report"
    # Every phase (examples, coverage, fuzzing; stateful has no links to follow here) runs, fuzzing
    # up to --max-examples cases per operation; `timeout` bounds the whole run.
    local status=0
    timeout --kill-after=10 "$max_seconds" \
        "$venv/bin/schemathesis" run "$base/openapi.json" \
        --url "$base" \
        --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
        --max-examples "$max_examples" \
        --request-timeout 15 \
        --generation-database none \
        --seed 1 \
        --no-color \
        --report junit --report-dir "$report" || status=$?
    case $status in
        0) log "schemathesis: no violation" ;;
        124 | 137) die "schemathesis did not finish within $max_seconds s" ;;
        *) die "schemathesis found violations (status $status; report in $report)" ;;
    esac
}

# --- 2. Swagger UI in headless Chromium -----------------------------------------------------------
modules=$ATHENS_HOME/node-playwright
install_swagger_ui() {
    command -v chromium >/dev/null 2>&1 || apt_install chromium
    command -v node >/dev/null 2>&1 || apt_install nodejs npm
    if [[ ! -f $modules/node_modules/playwright-core/package.json ]] ||
        ! grep -q "\"version\": \"$playwright_version\"" "$modules/node_modules/playwright-core/package.json"; then
        log "installing playwright-core $playwright_version into $modules"
        mkdir -p "$modules"
        (cd "$modules" && npm install --silent --no-audit --no-fund "playwright-core@$playwright_version" >&2)
    fi
}
run_swagger_ui() {
    install_swagger_ui
    local screenshot=$ATHENS_ARTIFACTS/swagger-ui.png
    rm -f "$screenshot"
    log "Swagger UI at $base/docs in $(chromium --version 2>/dev/null || echo chromium)"
    NODE_PATH=$modules/node_modules BASE_URL=$base HASHTAG=$hashtag SCREENSHOT=$screenshot \
        timeout --kill-after=10 120 node "$here/swagger-ui-check.js"
    [[ -s $screenshot ]] || die "no screenshot at $screenshot"
    log "Swagger UI: search results shown; screenshot $screenshot"
}

# --- 3. The search page in headless Chromium ------------------------------------------------------
run_search_page() {
    install_swagger_ui
    local screenshot=$ATHENS_ARTIFACTS/search-page.png
    rm -f "$screenshot"
    log "search page at $base/"
    NODE_PATH=$modules/node_modules BASE_URL=$base SCREENSHOT=$screenshot \
        timeout --kill-after=10 120 node "$here/search-page-check.js"
    [[ -s $screenshot ]] || die "no screenshot at $screenshot"
    log "search page: typo found, facet applied, paging, empty and error states; screenshot $screenshot"
}

if ((install_only)); then
    skip schemathesis || install_schemathesis
    skip swagger || install_swagger_ui
    log "installed"
    exit 0
fi
curl -fsS -o /dev/null "$base/openapi.json" || die "no OpenAPI document at $base/openapi.json"
skip schemathesis || run_schemathesis
skip swagger || run_swagger_ui
skip page || run_search_page
log "passed"
