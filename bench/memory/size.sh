#!/bin/bash
# Usage: size.sh P D RATE  -- seeded root, first cache build, cron collects, cache, rebuild, queries
set -u
P=$1; D=$2; RATE=$3; PHASES=${PHASES:-"setup cron cache queries"}
# CHECKOUT: the cprec checkout to measure (its .venv); OUT: where the data goes
HERE=$(cd "$(dirname "$0")" && pwd)
CHECKOUT=${CHECKOUT:-$(cd "$HERE/../.." && pwd)}; OUT=${OUT:-$CHECKOUT/bench/out/memory}
export CHECKOUT
cd "$CHECKOUT" && . .venv/bin/activate
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_DEFAULT_REGION=us-east-1
T=$OUT/cron-seed/template-p$P-d$D-r$RATE-s7-snap6-enc2
ROOT=$OUT/cron/p$P-d$D-r$RATE/data
L="${P}x${D}"
M="python $HERE/m.py"
if [[ $PHASES == *setup* ]]; then
  rm -rf "$(dirname $ROOT)"; mkdir -p $ROOT; cp -al $T/data/. $ROOT/
  $M "$L cache first-build" 1 -- cprec cache --data $ROOT
fi
if [[ $PHASES == *cron* ]]; then
  W=/tmp/sim-after-$L; rm -rf $W; mkdir -p $W; mkfifo $W/ctl
  python $HERE/sim.py $P $D $RATE 2026-12-07T00:00:00+00:00 < $W/ctl > $W/out 2>$W/err &
  SIM=$!
  exec 3>$W/ctl
  while [ ! -s $W/out ]; do sleep 0.2; done
  URL=$(head -1 $W/out); echo "sim $SIM at $URL"
  C="cprec collect --data $ROOT --endpoint-url $URL --region us-east-1"
  $M "$L collect cron-0 (first run on seeded root, warms simulator)" 1 -- $C
  python - <<PY
import sys, os; sys.path.insert(0, os.environ["CHECKOUT"])
from pathlib import Path
from recorder import head, cache
r = Path("$ROOT"); h = head.read(r)
print("head:", h and h.token, "clean:", h and h.clean, "cache head:", cache._cache_head(r))
PY
  for i in 1 2 3; do
    echo 5 >&3; sleep 0.5
    $M "$L collect cron (+5 min)" 1 -- $C
  done
  exec 3>&-
  kill $SIM; wait $SIM 2>/dev/null
  cat $W/out | tail -3
fi
if [[ $PHASES == *cache* ]]; then
  $M "$L cache (no-op refresh)" 3 -- cprec cache --data $ROOT
  $M "$L cache --rebuild" ${REBUILD_RUNS:-3} -- cprec cache --rebuild --data $ROOT
fi
if [[ $PHASES == *queries* ]]; then
  for q in current-state dora stage-durations; do
    $M "$L query $q" 3 -- cprec query $q --data $ROOT
  done
  $M "$L query recent-failures csv" 3 -- cprec query recent-failures --format csv --data $ROOT
fi
