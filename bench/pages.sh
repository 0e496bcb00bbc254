#!/usr/bin/env bash
# Page speed with a centre-sized cohort, as ratios to the yardstick (../shared/bench: an axum +
# sqlx + askama Fortunes server) measured in the same run with the same wrk procedure.
#
#   bench/pages.sh            seeds `attest demo --scale 10000`, serves it with the release
#                             binary and prints a Markdown table (also written to BENCHMARKS.md)
# Env: ATTEST_BIN (default target/release/attest), SEEDER, SCALE (10000), PORT (3900),
#      BEFORE=1 to serve the seeded data with an older binary that predates stored statuses
#      (the new tables are dropped first), LABEL (a name for the run in the table),
#      CONNS/DURATION/REPEATS as ../shared/bench/fortunes/run.sh takes them.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BIN=${ATTEST_BIN:-$ROOT/target/release/attest}
# The data is seeded by the binary that serves it (its own schema), except for BEFORE=1, whose
# binary cannot seed at scale: set SEEDER to a binary that can.
if [[ "${BEFORE:-0}" == 1 ]]; then SEEDER=${SEEDER:-$ROOT/target/release/attest}; else SEEDER=${SEEDER:-$BIN}; fi
SCALE=${SCALE:-10000}
PORT=${PORT:-3900}
LABEL=${LABEL:-$(git rev-parse --short HEAD)}
YARDSTICK=${YARDSTICK:-$ROOT/../shared/bench/fortunes/run.sh}
SERVER=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
SERVER=${SERVER%/*}
DB=attest_bench_pages
export DATABASE_URL=$SERVER/$DB
BASE=http://127.0.0.1:$PORT
WORK=$(mktemp -d)
PID=""
cleanup() { [[ -n "$PID" ]] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }

psql "$SERVER/postgres" -qc "drop database if exists $DB with (force)"
start=$(date +%s.%N)
"$SEEDER" demo --scale "$SCALE" >"$WORK/seed.txt"
seed_seconds=$(echo "$(date +%s.%N) - $start" | bc)
"$SEEDER" status verify >"$WORK/verify.txt"
if [[ "${BEFORE:-0}" == 1 ]]; then
  psql -q "$DATABASE_URL" <<'SQL'
drop table enrolment_count, enrolment_criterion_status, enrolment_progress;
drop view enrolment_detail;
alter table audit_event drop constraint audit_event_sealed_whole, drop column chain_seq;
drop view standing_sign_off, latest_sign_off, latest_judgement, current_evidence;
drop type criterion_status, enrolment_status;
delete from _sqlx_migrations where version >= 20261129000001;
SQL
fi

ATTEST_SECRET_KEY=${ATTEST_SECRET_KEY:-$(printf "5e%.0s" $(seq 32))} ATTEST_SECOND_FACTOR=optional "$BIN" serve --bind "127.0.0.1:$PORT" >"$WORK/serve.log" 2>&1 &
PID=$!
for _ in $(seq 100); do curl -sf -o /dev/null "$BASE/readyz" && break; sleep 0.2; done

# Signs in; prints "cookie<TAB>form token".
sign_in() {
  local jar="$WORK/$1.jar" token
  token=$(curl -s -c "$jar" "$BASE/login" | grep -o 'name="csrf_token" value="[^"]*"' | head -1 | cut -d'"' -f4)
  curl -s -o /dev/null -b "$jar" -c "$jar" -H 'sec-fetch-site: same-origin' \
    --data-urlencode "csrf_token=$token" --data-urlencode "email=$1" \
    --data-urlencode "password=practise-portal-2026" "$BASE/login"
  local cookie
  cookie=$(awk '$6 == "attest_session" { print "attest_session=" $7 }' "$jar")
  token=$(curl -s -b "$cookie" "$BASE/account" | grep -o 'name="csrf_token" value="[^"]*"' | head -1 | cut -d'"' -f4)
  printf '%s\t%s\n' "$cookie" "$token"
}
q() { psql -qtA "$DATABASE_URL" -c "$1"; }

IFS=$'\t' read -r candidate_cookie _ < <(sign_in scale-candidate-00008@attest.example)
IFS=$'\t' read -r assessor_cookie assessor_token < <(sign_in scale-assessor-01@attest.example)
IFS=$'\t' read -r admin_cookie _ < <(sign_in admin@attest.example)
enrolment=$(q "select e.enrolment_id from enrolment e join app_user u on u.user_id = e.candidate_id where u.email = 'scale-candidate-00008@attest.example'")
cohort=$(q "select cohort_id from cohort where name like '%scale cohort of $SCALE'")
report=/admin/cohorts/$cohort/report

rows=()
ratio() { echo "scale=2; $1 / $2" | bc; }
measure() { # name path [cookie]
  local out
  out=$(HEADER=${3:+Cookie: $3} "$YARDSTICK" --no-server "$PORT" "$2" 2>&1) || { echo "$out" >&2; echo "FAILED: $1" >&2; }
  local rps p50 p99
  rps=$(tail -1 <<<"$out" | cut -d= -f2)
  p50=$(grep '^run' <<<"$out" | sed -n 2p | grep -o 'p50=[^ ]*' | cut -d= -f2)
  p99=$(grep '^run' <<<"$out" | sed -n 2p | grep -o 'p99=[^ ]*' | cut -d= -f2)
  rows+=("| $1 | $rps | $(ratio "$rps" "$fortunes")× | $p50 | $p99 |")
}
# One timed GET read to its end, in milliseconds.
timed() { curl -s -o /dev/null -w '%{time_total}' -b "$2" "$BASE$1" | awk '{ printf "%.0f", $1 * 1000 }'; }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

fortunes_out=$("$YARDSTICK" 18080 /fortunes 2>&1)
fortunes=$(tail -1 <<<"$fortunes_out" | cut -d= -f2)

measure "GET /standards/TECIT50761 (not signed in)" /standards/TECIT50761
measure "GET /enrolments/{id} (portfolio, 10 items, candidate)" "/enrolments/$enrolment" "$candidate_cookie"
measure "GET /caseload (1,000 enrolments), page 1" /caseload "$assessor_cookie"
measure "GET /caseload (1,000 enrolments), page 10" "/caseload?page=10" "$assessor_cookie"
measure "GET /admin/cohorts/{id}/report (10,000, page of 100, summary and matrix)" "$report" "$admin_cookie"

# A judgement is a change: the report and the exports right after one.
# (Current versions spelt out: an older binary's database has no current_evidence view.)
current="evidence ev join enrolment e using (enrolment_id) join app_user a on a.user_id = e.assessor_id
  where ev.state = 'submitted' and a.email = 'scale-assessor-01@attest.example' and e.withdrawn_at is null
    and not exists (select 1 from evidence l where l.item_id = ev.item_id and l.version > ev.version)"
evidence=$(q "select ev.evidence_id from $current order by ev.evidence_id limit 1")
judge_body() { # evidence -> form body judging every claim met
  local body="csrf_token=$assessor_token"
  for c in $(q "select criterion_id from evidence_claim where evidence_id = '$1'"); do
    body+="&decision-$c=met"
    for check in valid authentic current sufficient reliable; do body+="&check-$c=$check"; done
  done
  echo "$body"
}
judge_once() {
  curl -s -o /dev/null -w '%{http_code}' -b "$assessor_cookie" -H 'sec-fetch-site: same-origin' \
    --data "$(judge_body "$evidence")" "$BASE/evidence/$evidence/judgements"
}
cold=()
for _ in 1 2 3; do judge_once >/dev/null; cold+=("$(timed "$report" "$admin_cookie")"); done
cold_ms=$(printf '%s\n' "${cold[@]}" | median)
for ext in csv xlsx; do
  times=()
  for _ in 1 2 3 4 5; do times+=("$(timed "$report.$ext" "$admin_cookie")"); done
  judge_once >/dev/null
  after=$(timed "$report.$ext" "$admin_cookie")
  rows+=("| GET /admin/cohorts/{id}/report.$ext (10,000 rows) | median of 5: $(printf '%s\n' "${times[@]}" | median) ms | right after a judgement: $after ms | | |")
done

# Judging under load: 8 connections posting judgements, each of a version nobody has judged in
# the run (as assessors judge new submissions), consecutive ones of different candidates.
checks="'&check-' || cl.criterion_id || '='"
q "select '/evidence/' || ev.evidence_id || '/judgements' || chr(9) || 'csrf_token=$assessor_token'
          || string_agg('&decision-' || cl.criterion_id || '=met'
                        || $checks || 'valid' || $checks || 'authentic' || $checks || 'current'
                        || $checks || 'sufficient' || $checks || 'reliable', '')
     from (select ev.evidence_id,
                  row_number() over (partition by ev.enrolment_id order by ev.evidence_id) as round,
                  ev.enrolment_id
             from $current) ev
     join evidence_claim cl using (evidence_id)
    group by ev.evidence_id, ev.round, ev.enrolment_id
    order by ev.round, ev.enrolment_id
    limit 8000" >"$WORK/judgements.txt"
judging=$(JUDGEMENTS="$WORK/judgements.txt" COOKIE="$assessor_cookie" \
  wrk --latency -t2 -c8 -d10s -s bench/judge.lua "$BASE" 2>&1)
judge_rps=$(awk '/^Requests\/sec:/ { printf "%d", $2 }' <<<"$judging")
judge_p50=$(awk '$1 == "50%" { print $2 }' <<<"$judging")
judge_p99=$(awk '$1 == "99%" { print $2 }' <<<"$judging")
grep -q 'Non-2xx' <<<"$judging" && echo "judging saw non-2xx answers: $judging" >&2

rss=$(awk '$1 == "VmHWM:" { print $2 }' "/proc/$PID/status")
table=$(
  echo "Run \`$LABEL\`, $(date -u +%Y-%m-%d), $(nproc) cores; seed: \`attest demo --scale $SCALE\` in ${seed_seconds%.*} s; yardstick /fortunes: $fortunes requests/s."
  echo
  echo "| What | requests/s | ratio to the yardstick | p50 | p99 |"
  echo "| --- | --- | --- | --- | --- |"
  printf '%s\n' "${rows[@]}"
  echo "| First report request after a judgement | ${cold_ms} ms (median of 3) | | | |"
  echo "| POST /evidence/{id}/judgements (8 connections, 10 s) | $judge_rps | | $judge_p50 | $judge_p99 |"
  echo
  echo "Server peak RSS: $((rss / 1024)) MiB. $(tail -1 "$WORK/verify.txt")"
)
echo "$table"
if [[ "${WRITE:-1}" == 1 ]]; then
  begin="<!-- bench/pages.sh: $LABEL begin -->" end="<!-- bench/pages.sh: $LABEL end -->"
  python3 - "$begin" "$end" "$table" <<'PY'
import sys
begin, end, table = sys.argv[1:]
path = "BENCHMARKS.md"
text = open(path).read()
section = f"{begin}\n{table}\n{end}"
if begin in text and end in text:
    text = text[: text.index(begin)] + section + text[text.index(end) + len(end):]
else:
    text = text.rstrip("\n") + "\n\n" + section + "\n"
open(path, "w").write(text)
PY
fi
