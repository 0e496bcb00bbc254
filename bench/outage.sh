#!/usr/bin/env bash
# Drill: PostgreSQL stopped in immediate mode while a signed-in person keeps reading their
# portfolio and sending a form, then started again. Prints what they got during the outage
# (every answer should be 200 before and after, 503 with Retry-After during it, never a 500
# or a sign-in page) and how long after PostgreSQL was back the portal served again.
#
# It stops the local PostgreSQL cluster: run it alone, not beside tests or benchmarks.
# Usage: ATTEST_BIN=target/release/attest bench/outage.sh
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${ATTEST_BIN:-target/release/attest}
BASE_URL=${BASE_URL:-postgres://postgres@127.0.0.1:5432}
DB=attest_outage
PORT=${PORT:-3950}
CLUSTER=$(ls /etc/postgresql | sort -V | tail -n 1)
WORK=$(mktemp -d)
trap 'kill "$SERVER" 2>/dev/null || true; rm -rf "$WORK"' EXIT

psql -q "$BASE_URL/postgres" -c "drop database if exists $DB with (force)" >/dev/null
DATABASE_URL="$BASE_URL/$DB" "$BIN" demo >/dev/null
DATABASE_URL="$BASE_URL/$DB" RUST_LOG=warn ATTEST_SECRET_KEY=${ATTEST_SECRET_KEY:-$(printf "5e%.0s" $(seq 32))} ATTEST_SECOND_FACTOR=optional "$BIN" serve --bind "127.0.0.1:$PORT" 2>"$WORK/server.log" &
SERVER=$!
until curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null; do sleep 0.2; done

# Sign in as the demo's first candidate with an open enrolment.
read -r EMAIL ENROLMENT < <(psql -qtAF ' ' "$BASE_URL/$DB" -c \
  "select u.email, en.enrolment_id from enrolment en join app_user u on u.user_id = en.candidate_id
    where en.withdrawn_at is null order by u.email limit 1")
token() { grep -o 'name="csrf_token" value="[^"]*"' | head -n 1 | sed 's/.*value="//; s/"$//'; }
TOKEN=$(curl -s -c "$WORK/jar" "http://127.0.0.1:$PORT/login" | token)
curl -s -o /dev/null -b "$WORK/jar" -c "$WORK/jar" -H 'Sec-Fetch-Site: same-origin' \
  --data-urlencode "csrf_token=$TOKEN" --data-urlencode "email=$EMAIL" \
  --data-urlencode "password=practise-portal-2026" "http://127.0.0.1:$PORT/login"
TOKEN=$(curl -s -b "$WORK/jar" "http://127.0.0.1:$PORT/account" | token)

# Reads and a form (a new draft), one after another, each answer logged as it ends:
# seconds, status, kind, Retry-After.
probe() {
  local started=$SECONDS status
  while (( SECONDS - started < 30 )); do
    status=$(curl -s -o /dev/null -b "$WORK/jar" -m 10 -D "$WORK/head" -w "%{http_code}" \
      "http://127.0.0.1:$PORT/enrolments/$ENROLMENT")
    echo "$(date +%s.%N) $status read $(grep -i '^retry-after' "$WORK/head" | tr -d '\r' | awk '{print $2}')"
    status=$(curl -s -o /dev/null -b "$WORK/jar" -m 10 -D "$WORK/head" -w "%{http_code}" \
      -H 'Sec-Fetch-Site: same-origin' -F "csrf_token=$TOKEN" -F "title=Outage draft" -F "action=save" \
      "http://127.0.0.1:$PORT/enrolments/$ENROLMENT/evidence/new")
    echo "$(date +%s.%N) $status form $(grep -i '^retry-after' "$WORK/head" | tr -d '\r' | awk '{print $2}')"
    sleep 0.05
  done
}
probe >"$WORK/answers" &
PROBE=$!

sleep 5
STOPPED=$(date +%s.%N)
pg_ctlcluster --skip-systemctl-redirect "$CLUSTER" main stop -m immediate
# When PostgreSQL answers again, polled apart from the start command (which returns later).
( until pg_isready -q -h 127.0.0.1; do sleep 0.02; done; date +%s.%N >"$WORK/back" ) &
POLLER=$!
sleep 8
pg_ctlcluster --skip-systemctl-redirect "$CLUSTER" main start
wait "$POLLER"
BACK=$(cat "$WORK/back")
wait "$PROBE"

echo "PostgreSQL stopped (immediate) for $(echo "$BACK - $STOPPED" | bc) s"
echo "Answers that ended while it was down, by kind and status:"
awk -v s="$STOPPED" -v b="$BACK" '$1 >= s && $1 < b {print "  " $3, $2}' "$WORK/answers" | sort | uniq -c
echo "Answers before and after, by kind and status:"
awk -v s="$STOPPED" -v b="$BACK" '$1 < s || $1 >= b {print "  " $3, $2}' "$WORK/answers" | sort | uniq -c
echo "503s without Retry-After: $(awk '$2 == 503 && $4 == ""' "$WORK/answers" | wc -l)"
echo "Answers that are neither 200, 303 nor 503: $(awk '$2 != 200 && $2 != 303 && $2 != 503' "$WORK/answers" | wc -l)"
FIRST_OK=$(awk -v b="$BACK" '$1 >= b && $2 == 200 && $3 == "read" {print $1; exit}' "$WORK/answers")
echo "First portfolio served $(echo "$FIRST_OK - $BACK" | bc) s after PostgreSQL was back"
SAVED=$(awk '$3 == "form" && $2 == 303' "$WORK/answers" | wc -l)
STORED=$(psql -qtA "$BASE_URL/$DB" -c "select count(*) from evidence where title = 'Outage draft'")
echo "Drafts the form was told were saved: $SAVED; drafts stored: $STORED"
echo "Server log lines at error level: $(grep -c ERROR "$WORK/server.log" || true)"
if [ -n "${KEEP:-}" ]; then
  cp "$WORK/answers" "$WORK/server.log" "$KEEP"/
  echo "$STOPPED $BACK" >"$KEEP/window"
fi
