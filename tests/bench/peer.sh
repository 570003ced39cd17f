#!/usr/bin/env bash
# TechPass's token endpoint side by side with node-oidc-provider (the OpenID-certified peer), on
# the same machine in the same run: same client authentication (client_secret_basic), same
# signing algorithm for ID tokens and JWT access tokens, same CPU pinning (servers on
# SERVER_CPU, wrk on LOAD_CPU) and the same load. Prints both and the ratio. See BENCHMARKS.md.
#
# Usage:  tests/bench/peer.sh [OUT_DIR]
# Env:    ALGS ("RS256 ES256"), DUR (10s per measurement), CONNS (32), WARMUP (5s, once per
#         server, client_credentials), SERVER_CPU (0), LOAD_CPU (1), PEER_VERSION (9.13.3),
#         PEER_SCRATCH (${TMPDIR:-/tmp}/techpass-bench-peer: npm installs the peer there,
#         never inside the repository), TP_PORT (3100), PEER_PORT (3000), REFRESH_TOKENS
#         (4 x CONNS), CARGO_TARGET_DIR (as cargo uses it).
# Needs:  node + npm, wrk (Debian: apt-get install -y wrk), taskset, curl, openssl, cargo.
#
# Grants: client_credentials (one JWT access token per answer) and refresh_token (rotating: a
# new refresh token, a JWT access token and an ID token per answer; every refresh token is used
# once, see peer/refresh.lua). Nothing here asserts a speed; the exit code says only whether the
# set-up worked and every answer was a 200.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$REPO/tests/bench/peer
ALGS=${ALGS:-"RS256 ES256"}
DUR=${DUR:-10s}
CONNS=${CONNS:-32}
WARMUP=${WARMUP:-5s}
SCPU=${SERVER_CPU:-0}
LCPU=${LOAD_CPU:-1}
PEER_VERSION=${PEER_VERSION:-9.13.3}
SCRATCH=${PEER_SCRATCH:-${TMPDIR:-/tmp}/techpass-bench-peer}
TP_PORT=${TP_PORT:-3100}
PEER_PORT=${PEER_PORT:-3000}
REFRESH_TOKENS=${REFRESH_TOKENS:-$((CONNS * 4))}
TCK=$(getconf CLK_TCK)

die() { echo "peer.sh: $*" >&2; exit 1; }
for tool in node npm wrk taskset curl openssl cargo; do
  command -v "$tool" >/dev/null || die "$tool is missing (wrk on Debian: apt-get install -y wrk)"
done
mkdir -p "$SCRATCH"
SCRATCH=$(cd "$SCRATCH" && pwd)
case "$SCRATCH/" in "$REPO"/*) die "PEER_SCRATCH must be outside the repository ($REPO)";; esac
OUT=${1:-$SCRATCH/results-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# --- The peer, from the npm registry, into the scratch folder. -------------------------------
PEER=$SCRATCH/peer
mkdir -p "$PEER"
installed=$(node -p "try { require('$PEER/node_modules/oidc-provider/package.json').version } catch { '' }")
if [[ $installed != "$PEER_VERSION" ]]; then
  echo '{ "name": "techpass-bench-peer", "private": true, "type": "module" }' > "$PEER/package.json"
  (cd "$PEER" && npm install --no-audit --no-fund --silent "oidc-provider@$PEER_VERSION") \
    || die "npm install oidc-provider@$PEER_VERSION failed"
fi
cp "$HERE/server.mjs" "$PEER/server.mjs"

# --- TechPass, release build. ------------------------------------------------------------------
(cd "$REPO" && cargo build --release --quiet --bin techpass) || die "cargo build failed"
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
TECHPASS=$TARGET/release/techpass
[[ -x $TECHPASS ]] || die "no release binary at $TECHPASS"

# --- Helpers. ----------------------------------------------------------------------------------
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
status_kib() { awk -v k="$2:" '$1==k {print $2}' "/proc/$1/status"; }
wait_up() { # url pid
  for _ in $(seq 1 150); do
    curl -sf "$1/.well-known/openid-configuration" >/dev/null && return 0
    kill -0 "$2" 2>/dev/null || die "the server for $1 exited"
    sleep 0.2
  done
  die "$1 did not come up"
}
jwt_alg() { node -e 'const t=JSON.parse(require("fs").readFileSync(0,"utf8"));
  for (const k of ["access_token","id_token"]) if (t[k]) process.stdout.write(k+"="+JSON.parse(
  Buffer.from(t[k].split(".")[0],"base64url")).alg+" ");'; }
SUMMARY=$OUT/summary.tsv
printf 'alg\tgrant\tserver\treq_s\tp50\tp99\tfailed\tcpu_s\tcpu_util\trss_idle_kib\trss_kib\thwm_kib\n' > "$SUMMARY"
declare -A IDLE

measure() { # alg grant server pid base script basic [tokens]
  local alg=$1 grant=$2 server=$3 pid=$4 base=$5 script=$6 basic=$7 tokens=${8:-} f t0 t1 secs
  f=$OUT/$alg-$grant-$server.txt
  t0=$(cpu_ticks "$pid")
  BASIC_AUTH=$basic TOKENS_FILE=$tokens BODY_EXTRA=${BODY_EXTRA:-} \
    taskset -c "$LCPU" timeout 300 wrk -t1 -c"$CONNS" -d"$DUR" --latency -s "$script" "$base" > "$f"
  t1=$(cpu_ticks "$pid")
  secs=$(awk '/requests in/ {sub(/s,$/,"",$4); print $4}' "$f")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$alg" "$grant" "$server" \
    "$(awk '/^Requests\/sec:/ {print $2}' "$f")" \
    "$(awk '$1=="50%" {print $2}' "$f")" "$(awk '$1=="99%" {print $2}' "$f")" \
    "$(awk -F'[:,] *' '/Non-2xx/ {n += $2} /Socket errors/ {n += $3 + $5 + $7 + $9} END {print n + 0}' "$f")" \
    "$(awk -v a="$t0" -v b="$t1" -v k="$TCK" 'BEGIN{printf "%.1f", (b-a)/k}')" \
    "$(awk -v a="$t0" -v b="$t1" -v k="$TCK" -v s="$secs" 'BEGIN{printf "%.2f", (b-a)/k/s}')" \
    "${IDLE[$server]}" "$(status_kib "$pid" VmRSS)" "$(status_kib "$pid" VmHWM)" >> "$SUMMARY"
}

cleanup() {
  for pid in ${TP_PID:-} ${PEER_PID:-}; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

# --- The signing baseline of the server core, in this run. -----------------------------------
echo "machine: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo); load $(cut -d' ' -f1-3 /proc/loadavg)"
taskset -c "$SCPU" openssl speed -seconds 3 rsa2048 ecdsap256 > "$OUT/openssl-speed.txt" 2>/dev/null
RSA_SIGN=$(awk '/^rsa 2048 bits/ {print $6}' "$OUT/openssl-speed.txt")
EC_SIGN=$(awk '/256 bits ecdsa \(nistp256\)/ {print $(NF-1)}' "$OUT/openssl-speed.txt")
echo "openssl speed on core $SCPU: RSA-2048 $RSA_SIGN sign/s, ECDSA P-256 $EC_SIGN sign/s"

for alg in $ALGS; do
  # TechPass: a fresh development instance (SQLite, generated master key, the built-in
  # development upstream), rate limits off: all load comes from one address and one client.
  TP_DIR=$SCRATCH/techpass-$alg
  rm -rf "$TP_DIR" && mkdir -p "$TP_DIR"
  export TECHPASS_LISTEN=127.0.0.1:$TP_PORT TECHPASS_LOG__LEVEL=warn \
    TECHPASS_RATE_LIMIT__CLIENT_PER_SECOND=0 TECHPASS_RATE_LIMIT__CLIENT_BURST=0 \
    TECHPASS_RATE_LIMIT__ADDRESS_PER_SECOND=0 TECHPASS_RATE_LIMIT__ADDRESS_BURST=0 \
    TECHPASS_HTTP__MAX_IN_FLIGHT_REQUESTS=65536 TECHPASS_HTTP__MAX_CONNECTIONS=65536
  created=$(cd "$TP_DIR" && "$TECHPASS" app create --name "Bench $alg" --json \
    --redirect-uri https://app.example.gov.sg/callback --grant-type authorization_code \
    --grant-type refresh_token --grant-type client_credentials \
    --id-token-alg "$alg" --access-token-alg "$alg")
  TP_ID=$(node -p "JSON.parse(process.argv[1]).client_id" "$created")
  TP_SECRET=$(node -p "JSON.parse(process.argv[1]).client_secret" "$created")
  TP_BASIC=$(printf '%s:%s' "$TP_ID" "$TP_SECRET" | base64 -w0)
  (cd "$TP_DIR" && exec taskset -c "$SCPU" "$TECHPASS" serve > "$OUT/techpass-$alg.log" 2>&1) &
  TP_PID=$!   # the subshell execs taskset, which execs techpass: this is its pid
  wait_up "http://127.0.0.1:$TP_PORT" "$TP_PID"
  IDLE[techpass]=$(status_kib "$TP_PID" VmRSS)
  taskset -c "$LCPU" node "$HERE/seed-techpass.mjs" "http://127.0.0.1:$TP_PORT" "$TP_ID" \
    "$TP_SECRET" "$REFRESH_TOKENS" > "$OUT/techpass-$alg-refresh-tokens.txt" || die "seeding TechPass failed"

  # The peer.
  PEER_TOKENS=$OUT/peer-$alg-refresh-tokens.txt
  ALG=$alg PORT=$PEER_PORT REFRESH_TOKENS=$REFRESH_TOKENS TOKENS_FILE=$PEER_TOKENS \
    taskset -c "$SCPU" node "$PEER/server.mjs" > "$OUT/peer-$alg.log" 2>&1 &
  PEER_PID=$!
  wait_up "http://127.0.0.1:$PEER_PORT" "$PEER_PID"
  IDLE[peer]=$(status_kib "$PEER_PID" VmRSS)
  PEER_BASIC=$(printf 'bench-client:bench-secret-0123456789abcdef0123456789abcdef' | base64 -w0)

  # What each signs with, checked on one answer of each grant before the load.
  echo "$alg: TechPass client_credentials: $(curl -s -H "Authorization: Basic $TP_BASIC" \
    -d grant_type=client_credentials "http://127.0.0.1:$TP_PORT/token" | jwt_alg)"
  echo "$alg: peer client_credentials: $(curl -s -H "Authorization: Basic $PEER_BASIC" \
    -d 'grant_type=client_credentials&scope=api%3Aread' "http://127.0.0.1:$PEER_PORT/token" | jwt_alg)"

  # Warm-up, once per server (client_credentials: it consumes no refresh tokens).
  for s in techpass peer; do
    if [[ $s == techpass ]]; then base=http://127.0.0.1:$TP_PORT basic=$TP_BASIC extra=
    else base=http://127.0.0.1:$PEER_PORT basic=$PEER_BASIC extra='&scope=api%3Aread'; fi
    BASIC_AUTH=$basic BODY_EXTRA=$extra taskset -c "$LCPU" timeout 60 \
      wrk -t1 -c"$CONNS" -d"$WARMUP" -s "$HERE/client_credentials.lua" "$base" > "$OUT/$alg-warmup-$s.txt"
  done

  # Alternating servers, so that noise from the rest of the machine falls on both alike.
  BODY_EXTRA= measure "$alg" client_credentials techpass "$TP_PID" "http://127.0.0.1:$TP_PORT" \
    "$HERE/client_credentials.lua" "$TP_BASIC"
  BODY_EXTRA='&scope=api%3Aread' measure "$alg" client_credentials peer "$PEER_PID" \
    "http://127.0.0.1:$PEER_PORT" "$HERE/client_credentials.lua" "$PEER_BASIC"
  # The first refresh answers of each server, before the load: what they sign.
  echo "$alg: TechPass refresh_token: $(curl -s -H "Authorization: Basic $TP_BASIC" \
    --data-urlencode grant_type=refresh_token \
    --data-urlencode "refresh_token=$(head -1 "$OUT/techpass-$alg-refresh-tokens.txt")" \
    "http://127.0.0.1:$TP_PORT/token" | tee "$OUT/techpass-$alg-refresh-sample.json" | jwt_alg)"
  echo "$alg: peer refresh_token: $(curl -s -H "Authorization: Basic $PEER_BASIC" \
    --data-urlencode grant_type=refresh_token \
    --data-urlencode "refresh_token=$(head -1 "$PEER_TOKENS")" \
    "http://127.0.0.1:$PEER_PORT/token" | tee "$OUT/peer-$alg-refresh-sample.json" | jwt_alg)"
  # Those two first tokens are spent now: the load uses the rest.
  sed -i 1d "$OUT/techpass-$alg-refresh-tokens.txt" "$PEER_TOKENS"
  measure "$alg" refresh_token techpass "$TP_PID" "http://127.0.0.1:$TP_PORT" \
    "$HERE/refresh.lua" "$TP_BASIC" "$OUT/techpass-$alg-refresh-tokens.txt"
  measure "$alg" refresh_token peer "$PEER_PID" "http://127.0.0.1:$PEER_PORT" \
    "$HERE/refresh.lua" "$PEER_BASIC" "$PEER_TOKENS"

  kill "$TP_PID" "$PEER_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  TP_PID= PEER_PID=
done

# --- Report. -----------------------------------------------------------------------------------
echo
echo "servers pinned to core $SCPU, wrk to core $LCPU; $CONNS connections, $DUR per measurement"
echo "openssl speed on core $SCPU: RSA-2048 $RSA_SIGN sign/s, ECDSA P-256 $EC_SIGN sign/s"
column -t -s $'\t' "$SUMMARY"
echo
awk -F'\t' -v rsa="$RSA_SIGN" -v ec="$EC_SIGN" '
  NR > 1 { key = $1 " " $2; rate[key, $3] = $4; bad[key] += $7; seen[key] = 1; order[++n] = key }
  END {
    printf "%-26s %12s %12s %8s %24s\n", "alg grant", "TechPass/s", "peer/s", "ratio", "TechPass sig/s / openssl"
    for (i = 1; i <= n; i++) {
      key = order[i]; if (done[key]++) continue
      split(key, parts, " "); base = (parts[1] == "ES256") ? ec : rsa
      sigs = (parts[2] == "refresh_token") ? 2 : 1   # JWTs signed per answer
      t = rate[key, "techpass"]; p = rate[key, "peer"]
      printf "%-26s %12.0f %12.0f %7.2fx %23.0f%%\n", key, t, p, (p > 0 ? t / p : 0), (base > 0 ? 100 * sigs * t / base : 0)
    }
  }' "$SUMMARY" | tee "$OUT/ratios.txt"
echo "results in $OUT"
if awk -F'\t' 'NR > 1 && $7 + 0 > 0 { bad = 1 } END { exit !bad }' "$SUMMARY"; then
  echo "some requests failed (not 200, or a socket error: the failed column): see the wrk output in $OUT" >&2
  exit 1
fi
