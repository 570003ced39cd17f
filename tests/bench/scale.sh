#!/usr/bin/env bash
# The token path as the database grows (issue 17 items 5 and 6): runs the token endpoint
# benchmark on PostgreSQL on a fresh schema and on one seeded with PEOPLE people (each with an
# upstream link and a session, all signed in recently: the lifecycle's steady state), APPS apps
# with a secret each and FAMILIES live refresh token families; prints the plan of every hot
# statement on the seeded schema; times the background purges and the scheduled jobs
# (`techpass admin run-jobs`) over it, and runs the benchmark again while those jobs run back to
# back; then serves the seeded schema with `techpass serve` (running the jobs every 10 s) and
# reads its memory (VmRSS, VmHWM) idle, after its jobs ran, and under wrk load
# (client_credentials, refresh).
# Cleans up. See BENCHMARKS.md ("As the database grows").
#
#   TECHPASS_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test tests/bench/scale.sh
#   PEOPLE=10000 APPS=100 FAMILIES=10000 tests/bench/scale.sh    # a quick look
#
# Needs: psql, bc, node, wrk (Debian: apt-get install -y wrk), curl, cargo. Env: SCALE_PORT
# (3190) for the served instance, DUR (10s) per wrk measurement, CONNS (32), ROUNDS (2) of the
# fresh and seeded benchmarks, run alternately.
set -euo pipefail
cd "$(dirname "$0")/../.."
url="${TECHPASS_TEST_POSTGRES_URL:?set TECHPASS_TEST_POSTGRES_URL to a PostgreSQL database}"
people="${PEOPLE:-1000000}" apps="${APPS:-10000}" families="${FAMILIES:-1000000}"
port="${SCALE_PORT:-3190}" dur="${DUR:-10s}" conns="${CONNS:-32}" rounds="${ROUNDS:-2}"
for tool in psql bc node wrk curl cargo; do
  command -v "$tool" >/dev/null || { echo "scale.sh: $tool is missing" >&2; exit 1; }
done
bin="${CARGO_TARGET_DIR:-target}/release/techpass"
key="$(head -c 32 /dev/urandom | base64)"
export BENCH_MASTER_KEY="$key"   # the benchmark's signing keys, usable by `techpass` below
schema="techpass_scale_$$"
sep='?'; [[ "$url" == *\?* ]] && sep='&'
scaled="${url}${sep}options=-c%20search_path%3D${schema}"
psql_in() { PGOPTIONS="-c search_path=${schema}" psql "$url" -X -q "$@"; }
tp() { TECHPASS_DATABASE_URL="$scaled" TECHPASS_MASTER_KEY="$key" "$bin" "$@"; }
served=""
jobs_loop=""
cleanup() {
  for pid in $served $jobs_loop; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  psql "$url" -X -q -c "DROP SCHEMA IF EXISTS ${schema} CASCADE" || true
}
trap cleanup EXIT

cargo build --release --bin techpass
cargo bench --bench token_endpoint --no-run

echo "== seeding ${people} people, ${apps} apps, ${families} refresh token families"
psql "$url" -X -q -c "CREATE SCHEMA ${schema}"
tp migrate
start=$(date +%s.%N)
psql_in -v people="$people" -v apps="$apps" -v families="$families" -f tests/bench/scale_seed.sql
echo "seeded in $(echo "$(date +%s.%N) - $start" | bc) s"
psql_in -At -c "SELECT 'rows: ' || (SELECT count(*) FROM users) || ' people, ' ||
  (SELECT count(*) FROM clients) || ' apps, ' || (SELECT count(*) FROM refresh_tokens) ||
  ' refresh tokens; database ' || pg_size_pretty(pg_database_size(current_database()))"

echo "== plans of the hot statements"
psql_in -f tests/bench/scale_explain.sql

# Alternately, so that the machine's drift falls on both alike.
for round in $(seq 1 "$rounds"); do
  echo "== round ${round}: the benchmark on a fresh database"
  BENCH_OPEN_LOOP=1 cargo bench --bench token_endpoint -- --postgres
  echo "== round ${round}: the same benchmark on the seeded database"
  BENCH_DATABASE_URL="$scaled" BENCH_OPEN_LOOP=1 cargo bench --bench token_endpoint -- --postgres
done

echo "== the background purges over the seeded tables (what the replicas run every keys.reload_interval_secs)"
psql_in -c '\timing on' \
  -c "DELETE FROM login_attempts WHERE expires_at < 1" \
  -c "DELETE FROM sessions WHERE expires_at < 1 OR last_seen_at < -1" \
  -c "DELETE FROM used_assertions WHERE expires_at < 1"

echo "== the scheduled jobs over the seeded tables (techpass admin run-jobs; every replica runs them every jobs.interval_secs)"
for run in 1 2; do
  start=$(date +%s.%N)
  tp admin run-jobs > /dev/null
  echo "run-jobs, run ${run}: $(echo "$(date +%s.%N) - $start" | bc) s"
done

echo "== the same benchmark on the seeded database while the jobs run back to back in another process"
( while :; do tp admin run-jobs > /dev/null; done ) &
jobs_loop=$!
BENCH_DATABASE_URL="$scaled" BENCH_OPEN_LOOP=1 cargo bench --bench token_endpoint -- --postgres
kill "$jobs_loop" 2>/dev/null || true
wait "$jobs_loop" 2>/dev/null || true
jobs_loop=""

echo "== memory of techpass serve on the seeded database"
kib() { awk -v k="$2:" '$1==k {print $2}' "/proc/$1/status"; }
created=$(tp app create --name "Scale memory" --json --redirect-uri https://app.example.gov.sg/callback \
  --grant-type authorization_code --grant-type refresh_token --grant-type client_credentials)
id=$(node -p "JSON.parse(process.argv[1]).client_id" "$created")
secret=$(node -p "JSON.parse(process.argv[1]).client_secret" "$created")
basic=$(printf '%s:%s' "$id" "$secret" | base64 -w0)
base="http://127.0.0.1:${port}"
TECHPASS_LISTEN="127.0.0.1:${port}" TECHPASS_LOG__LEVEL=warn \
  TECHPASS_RATE_LIMIT__CLIENT_PER_SECOND=0 TECHPASS_RATE_LIMIT__CLIENT_BURST=0 \
  TECHPASS_RATE_LIMIT__ADDRESS_PER_SECOND=0 TECHPASS_RATE_LIMIT__ADDRESS_BURST=0 \
  TECHPASS_HTTP__MAX_IN_FLIGHT_REQUESTS=65536 TECHPASS_HTTP__MAX_CONNECTIONS=65536 \
  TECHPASS_JOBS__INTERVAL_SECS=10 TECHPASS_DATABASE_URL="$scaled" TECHPASS_MASTER_KEY="$key" "$bin" serve > /dev/null 2>&1 &
served=$!
for _ in $(seq 1 150); do curl -sf "$base/.well-known/openid-configuration" > /dev/null && break; sleep 0.2; done
curl -sf "$base/.well-known/openid-configuration" > /dev/null || { echo "scale.sh: serve did not come up" >&2; exit 1; }
echo "idle after start: VmRSS $(kib "$served" VmRSS) KiB"
# It runs the jobs at start and then every 10 s (here), under the loads below too.
sleep 15
echo "15 s later, its jobs run over the seeded tables: VmRSS $(kib "$served" VmRSS) KiB, VmHWM $(kib "$served" VmHWM) KiB"
tokens=$(mktemp)
node tests/bench/peer/seed-techpass.mjs "$base" "$id" "$secret" $((conns * 4)) > "$tokens"
BASIC_AUTH="$basic" wrk -t1 -c"$conns" -d"$dur" --latency -s tests/bench/peer/client_credentials.lua "$base" \
  | grep -E 'Requests/sec|^ +(50|99)%|Non-2xx'
echo "after client_credentials: VmRSS $(kib "$served" VmRSS) KiB, VmHWM $(kib "$served" VmHWM) KiB"
BASIC_AUTH="$basic" TOKENS_FILE="$tokens" wrk -t1 -c"$conns" -d"$dur" --latency -s tests/bench/peer/refresh.lua "$base" \
  | grep -E 'Requests/sec|^ +(50|99)%|Non-2xx'
echo "after refresh_token: VmRSS $(kib "$served" VmRSS) KiB, VmHWM $(kib "$served" VmHWM) KiB"
rm -f "$tokens"
