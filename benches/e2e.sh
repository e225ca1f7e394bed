#!/usr/bin/env bash
# End-to-end speed of netanalyzer-sniffer against tshark on the same
# generated capture, measured in the same run (docs/benchmarks.md).
#
#   bash benches/e2e.sh              # 1M packets, 10 sniffer runs, 3 tshark runs
#   PACKETS=100000 RUNS=3 TSHARK_RUNS=1 bash benches/e2e.sh   # quick look
#
# Steps: build release; generate BIG.pcap with netanalyzer-gen (normal
# traffic by default, seed 1; kept between runs); read it once so it sits in the page
# cache; time `netanalyzer-sniffer -r BIG.pcap --output null` and
# `tshark -T fields` with the 28 fields of the oracle in
# ../shared/pcaps/README.md, both pinned to one core with taskset, with
# hyperfine; print packets/s and the ratio.
#
# Environment: PACKETS (1000000), SCENARIO (normal; any --scenario list of
# netanalyzer-gen, e.g. syn-flood), RUNS (10), TSHARK_RUNS (3), CPU (the core
# to pin to, 1), WORK (target/e2e), TSHARK_NOREASM=1 to also time tshark
# with IP defragmentation and TCP reassembly off.
# Needs: cargo, hyperfine, tshark, taskset, jq (apt-get install -y
# hyperfine tshark util-linux jq).
set -euo pipefail

PACKETS=${PACKETS:-1000000}
SCENARIO=${SCENARIO:-normal}
RUNS=${RUNS:-10}
TSHARK_RUNS=${TSHARK_RUNS:-3}
CPU=${CPU:-1}
TSHARK_NOREASM=${TSHARK_NOREASM:-0}

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
WORK=${WORK:-$root/target/e2e}
mkdir -p "$WORK"

for tool in cargo hyperfine tshark taskset jq; do
    command -v "$tool" >/dev/null || { echo "e2e.sh: $tool is missing" >&2; exit 1; }
done

echo "== machine"
echo "date:      $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "cpu:       $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), nproc $(nproc)"
echo "load:      $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min)"
echo "rustc:     $(rustc -V)"
echo "tshark:    $(tshark -v 2>/dev/null | head -1)"
echo "hyperfine: $(hyperfine --version)"
echo "pinned to: cpu $CPU (taskset -c $CPU)"

echo "== build"
cargo build --release -p netanalyzer-examples --bin netanalyzer-sniffer --bin netanalyzer-gen
gen=$root/target/release/netanalyzer-gen
sniffer=$root/target/release/netanalyzer-sniffer

tag=$(echo "$SCENARIO" | tr ',:' '_-')
BIG=$WORK/big-$tag-$PACKETS.pcap
echo "== capture: $BIG"
if [ ! -s "$BIG" ]; then
    "$gen" --packets "$PACKETS" --seed 1 --scenario "$SCENARIO" -o "$BIG" \
        --labels "$WORK/big-$tag-$PACKETS.labels.csv"
fi
bytes=$(stat -c %s "$BIG")
echo "$PACKETS packets, $bytes bytes"
cat "$BIG" >/dev/null # page cache: both tools then read from memory

FIELDS=(-e frame.number -e frame.time_epoch -e frame.len -e frame.cap_len
    -e eth.src -e eth.dst -e vlan.id -e ip.src
    -e ip.dst -e ipv6.src -e ipv6.dst -e ip.proto
    -e ipv6.nxt -e ip.ttl -e tcp.srcport -e tcp.dstport
    -e udp.srcport -e udp.dstport -e tcp.flags -e tcp.seq_raw
    -e tcp.ack_raw -e tcp.window_size_value -e icmp.type -e icmp.code
    -e arp.opcode -e dns.qry.name -e http.host -e tls.handshake.extensions_server_name)
tshark_cmd="taskset -c $CPU tshark -r $BIG -T fields -E header=y -E separator=/t -E occurrence=f ${FIELDS[*]}"
tshark_noreasm_cmd="taskset -c $CPU tshark -r $BIG -o ip.defragment:FALSE -o ipv6.defragment:FALSE -o tcp.desegment_tcp_streams:FALSE -T fields -E header=y -E separator=/t -E occurrence=f ${FIELDS[*]}"
sniffer_cmd="taskset -c $CPU $sniffer -r $BIG --output null"

echo "== sniffer summary (one run, its own stderr report)"
$sniffer_cmd 2>&1 | tail -n 12

echo "== sniffer: $sniffer_cmd"
hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$WORK/sniffer-$tag.json" "$sniffer_cmd"

echo "== tshark: $tshark_cmd > /dev/null"
rows=$($tshark_cmd 2>/dev/null | wc -l)
echo "tshark printed $rows lines (header + $((rows - 1)) packets)"
hyperfine -N --runs "$TSHARK_RUNS" --export-json "$WORK/tshark-$tag.json" "$tshark_cmd"

if [ "$TSHARK_NOREASM" = 1 ]; then
    echo "== tshark, no reassembly: $tshark_noreasm_cmd > /dev/null"
    hyperfine -N --runs "$TSHARK_RUNS" --export-json "$WORK/tshark-noreasm-$tag.json" "$tshark_noreasm_cmd"
fi

row() { # name json
    jq -r --arg name "$1" --argjson n "$PACKETS" \
        '.results[0] | [$name, (.mean*1e4|round/1e4), ((.stddev // 0)*1e4|round/1e4), (.min*1e4|round/1e4),
          (.user*1e4|round/1e4), (.system*1e4|round/1e4), ($n / .mean | round),
          ($n / (.user + .system) | round)] | @tsv' "$2"
}
mean() { jq -r '.results[0].mean' "$1"; }

echo "== result ($SCENARIO: $PACKETS packets, $bytes bytes, one core)"
{
    printf 'tool\tmean_s\tstddev_s\tmin_s\tuser_s\tsys_s\tpackets_per_s\tpackets_per_cpu_s\n'
    row netanalyzer-sniffer "$WORK/sniffer-$tag.json"
    row tshark "$WORK/tshark-$tag.json"
    if [ "$TSHARK_NOREASM" = 1 ]; then row tshark-noreasm "$WORK/tshark-noreasm-$tag.json"; fi
} | column -t -s $'\t' | tee "$WORK/result-$tag.txt"
ratio=$(jq -n --argjson t "$(mean "$WORK/tshark-$tag.json")" --argjson s "$(mean "$WORK/sniffer-$tag.json")" '$t / $s * 10 | round / 10')
pps=$(jq -n --argjson s "$(mean "$WORK/sniffer-$tag.json")" --argjson n "$PACKETS" '$n / $s | round')
echo "sniffer: $pps packets/s (target >= 2500000); ${ratio}x tshark (target >= 50x)" | tee -a "$WORK/result-$tag.txt"
