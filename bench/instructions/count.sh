#!/usr/bin/env bash
# Instructions per request of a scenario, counted by valgrind's callgrind: unlike time, the count
# barely moves from run to run (within ~0.5%, with a rare outlier: run twice), so it can judge a
# change of a few percent on a machine whose speed drifts by 30%. Instructions are not time
# (cache misses and branch mispredictions are not counted): confirm a gain with bench/run.ts.
#
#   bench/instructions/count.sh [scenario...]            # default: hello json wait
#   TREE=/path/to/other/checkout bench/instructions/count.sh json   # the same, for another tree
#
# V8 runs single-threaded (its compilers on the main thread) so that the count is repeatable; the
# count covers N=20000 requests after W=20000 warm-up ones. Needs valgrind (apt-get install valgrind).
set -euo pipefail
tree="${TREE:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
W="${W:-20000}"
N="${N:-20000}"
for s in "${@:-hello json wait}"; do
  for scenario in $s; do
    out="$(mktemp)"
    (cd "$tree" && S="$scenario" W="$W" N="$N" valgrind --tool=callgrind --callgrind-out-file="$out" \
      --zero-before=uv_getrusage --dump-before=uv_loadavg \
      node_modules/.bin/node --single-threaded --no-liftoff bench/instructions/harness.ts >/dev/null 2>&1)
    total="$(grep -m1 '^summary:\|^totals:' "$out".1 | awk '{print $2}')"
    # V8's optimizing compilers run on the main thread here, whenever a function gets hot: a
    # change in one function moves when (and whether) others are compiled within the counted
    # requests, by up to 25% of the count. What they cost is left out (and shown apart).
    jit="$(callgrind_annotate --inclusive=yes "$out".1 2>/dev/null \
      | { grep -E 'v8::internal::Runtime_(Optimize|Compile|InstallBaselineCode|NotifyDeoptimized)' || true; } \
      | awk '{gsub(",", "", $1); s += $1} END {print s + 0}')"
    rm -f "$out" "$out".*
    echo "$scenario: $(( (total - jit) / N )) instructions per request (V8's compilers, left out: $(( jit / N )))"
  done
done
