#!/usr/bin/env bash
# The token path as the database grows (issue 17 item 5): runs the token endpoint benchmark on
# PostgreSQL twice, on a fresh schema and on one seeded with PEOPLE people (each with an
# upstream link and a session), APPS apps with a secret each and FAMILIES live refresh token
# families, prints the plan of every hot statement on the seeded schema, the time the
# background purges take there, and cleans up. See BENCHMARKS.md ("As the database grows").
#
#   TECHPASS_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test tests/bench/scale.sh
#   PEOPLE=10000 APPS=100 FAMILIES=10000 tests/bench/scale.sh    # a quick look
set -euo pipefail
cd "$(dirname "$0")/../.."
url="${TECHPASS_TEST_POSTGRES_URL:?set TECHPASS_TEST_POSTGRES_URL to a PostgreSQL database}"
people="${PEOPLE:-1000000}" apps="${APPS:-10000}" families="${FAMILIES:-1000000}"
schema="techpass_scale_$$"
sep='?'; [[ "$url" == *\?* ]] && sep='&'
scaled="${url}${sep}options=-c%20search_path%3D${schema}"
psql_in() { PGOPTIONS="-c search_path=${schema}" psql "$url" -X -q "$@"; }
cleanup() { psql "$url" -X -q -c "DROP SCHEMA IF EXISTS ${schema} CASCADE" || true; }
trap cleanup EXIT

cargo build --release --bin techpass
cargo bench --bench token_endpoint --no-run

echo "== a fresh database"
BENCH_OPEN_LOOP=1 cargo bench --bench token_endpoint -- --postgres

echo "== seeding ${people} people, ${apps} apps, ${families} refresh token families"
psql "$url" -X -q -c "CREATE SCHEMA ${schema}"
TECHPASS_DATABASE_URL="$scaled" TECHPASS_MASTER_KEY="$(head -c 32 /dev/urandom | base64)" \
  target/release/techpass migrate
start=$(date +%s.%N)
psql_in -v people="$people" -v apps="$apps" -v families="$families" -f tests/bench/scale_seed.sql
echo "seeded in $(echo "$(date +%s.%N) - $start" | bc) s"
psql_in -At -c "SELECT 'rows: ' || (SELECT count(*) FROM users) || ' people, ' ||
  (SELECT count(*) FROM clients) || ' apps, ' || (SELECT count(*) FROM refresh_tokens) ||
  ' refresh tokens; database ' || pg_size_pretty(pg_database_size(current_database()))"

echo "== plans of the hot statements"
psql_in -f tests/bench/scale_explain.sql

echo "== the same benchmark on the seeded database"
BENCH_DATABASE_URL="$scaled" BENCH_OPEN_LOOP=1 cargo bench --bench token_endpoint -- --postgres

echo "== the background purges over the seeded tables (what the replicas run every keys.reload_interval_secs)"
psql_in -c '\timing on' \
  -c "DELETE FROM login_attempts WHERE expires_at < 1" \
  -c "DELETE FROM sessions WHERE expires_at < 1 OR last_seen_at < -1" \
  -c "DELETE FROM used_assertions WHERE expires_at < 1"
