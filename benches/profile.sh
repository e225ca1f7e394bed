#!/usr/bin/env bash
# Where netanalyzer-sniffer's time goes, in instructions (valgrind
# callgrind): exact counts that a busy machine does not disturb
# (docs/benchmarks.md, "Profile").
#
#   bash benches/profile.sh                 # 100k packets, normal and syn-flood
#   PACKETS=20000 SCENARIOS=normal bash benches/profile.sh
#
# For each scenario: generate a capture (seed 1), run
# `netanalyzer-sniffer -r FILE --output null` under callgrind, print the
# instructions per packet (whole process, and inside
# `FileSource::next_into`, i.e. reading + parsing) and the functions with
# the most instructions (self cost, inlined code counted where it was
# written). Kernel work (the read() copies) is not counted by callgrind:
# use `perf record -e cpu-clock` for that (see the doc).
# Needs: cargo, valgrind (apt-get install -y valgrind).
set -euo pipefail

PACKETS=${PACKETS:-100000}
SCENARIOS=${SCENARIOS:-normal syn-flood}
TOP=${TOP:-20}

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
WORK=${WORK:-$root/target/e2e}
mkdir -p "$WORK"
command -v valgrind >/dev/null || { echo "profile.sh: valgrind is missing" >&2; exit 1; }

cargo build --release -p netanalyzer-examples --bin netanalyzer-sniffer --bin netanalyzer-gen
gen=$root/target/release/netanalyzer-gen
sniffer=$root/target/release/netanalyzer-sniffer

ir_total() { # callgrind output -> total Ir
    callgrind_annotate "$1" 2>/dev/null | awk '/PROGRAM TOTALS/ && !done { gsub(",", "", $1); print $1; done = 1 }'
}

for sc in $SCENARIOS; do
    f=$WORK/profile-$sc-$PACKETS.pcap
    [ -s "$f" ] || "$gen" --packets "$PACKETS" --seed 1 --scenario "$sc" -o "$f" \
        --labels "$WORK/profile-$sc-$PACKETS.labels.csv" >/dev/null
    out=$WORK/callgrind-$sc.out
    inner=$WORK/callgrind-$sc-next_into.out
    valgrind --tool=callgrind --callgrind-out-file="$out" \
        "$sniffer" -r "$f" --output null >/dev/null 2>&1
    valgrind --tool=callgrind --callgrind-out-file="$inner" \
        --toggle-collect='*FileSource*as*Source*next_into*' \
        "$sniffer" -r "$f" --output null >/dev/null 2>&1
    total=$(ir_total "$out")
    in_src=$(ir_total "$inner")
    echo "== $sc: $PACKETS packets, $(stat -c %s "$f") bytes"
    echo "instructions: $total total, $((total / PACKETS))/packet;" \
        "in FileSource::next_into (read + parse): $((in_src / PACKETS))/packet"
    callgrind_annotate "$out" 2>/dev/null |
        awk -v top="$TOP" '/file:function/ { on = 1; getline; next } on && NF && n++ < top' |
        sed -E "s#$root/##; s#/rustc/[0-9a-f]+/library/#std:#; s# \[[^]]*\]\$##"
done
