#!/usr/bin/env bash
# The long form of the fuzz run in .ci/run: every fuzz target (or those named
# on the command line), one after the other, for FUZZ_RUNS executions or
# FUZZ_SECONDS seconds, whichever comes first. Each starts from its seed
# corpus, fuzz/corpus/<target>/, which it only reads: what libFuzzer finds
# goes to a scratch directory. Writes a Markdown table of figures (executions,
# seconds, exec/s, final coverage, corpus size, crashes) to FIGURES, a row as
# each target finishes, and exits non-zero if any target crashed.
#
#   fuzz/long.sh                      # every target, an hour each
#   FUZZ_SECONDS=30 fuzz/long.sh      # a short run of every target
#   fuzz/long.sh interaction envelope # two targets
#
# Needs cargo-fuzz; RUSTC_BOOTSTRAP=1 lets a stable toolchain build the
# targets with AddressSanitizer, as in .ci/run.
#
# Environment:
#   FUZZ_RUNS     executions per target (default 100000000)
#   FUZZ_SECONDS  seconds per target (default 3600)
#   FIGURES       the table's file (default fuzz/figures.md)
#   FUZZ_SCRATCH  where the corpora found and the logs go (default a new
#                 temporary directory, kept, printed at the end)
set -euo pipefail

FUZZ_RUNS="${FUZZ_RUNS:-100000000}"
FUZZ_SECONDS="${FUZZ_SECONDS:-3600}"
for v in FUZZ_RUNS FUZZ_SECONDS; do
    case "${!v}" in
        '' | *[!0-9]* | 0)
            echo "$v must be a positive whole number, got '${!v}'" >&2
            exit 2
            ;;
    esac
done

here="$(cd "$(dirname "$0")" && pwd)"
FIGURES="$(realpath -m "${FIGURES:-$here/figures.md}")"
scratch="${FUZZ_SCRATCH:-$(mktemp -d -t mayfly-fuzz.XXXXXX)}"
mkdir -p "$scratch"
scratch="$(cd "$scratch" && pwd)"

if [ -d "$HOME/.cargo/bin" ]; then
    PATH="$HOME/.cargo/bin:$PATH"
fi
export RUSTC_BOOTSTRAP=1
cd "$here"

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi
if [ "${#targets[@]}" -eq 0 ]; then
    echo "no fuzz targets found" >&2
    exit 1
fi
for t in "${targets[@]}"; do
    if [ ! -d "corpus/$t" ]; then
        echo "no seed corpus fuzz/corpus/$t (cargo run -p mayfly-protocol --example gen-corpus)" >&2
        exit 2
    fi
done

echo "== fuzz build"
cargo fuzz build

commit="$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git -C "$here" status --porcelain -- .. 2>/dev/null | grep -v ' fuzz/figures.md$' || true)" ]; then
    commit="$commit (with uncommitted changes)"
fi
{
    echo "# Fuzzing figures"
    echo
    echo "\`fuzz/long.sh\` at commit $commit, $(date -u +%Y-%m-%d), on $(nproc) cores"
    echo "($(rustc --version | cut -d' ' -f1-2), cargo-fuzz $(cargo fuzz --version | awk '{print $2}'), AddressSanitizer)."
    echo "Each target ran for at most $FUZZ_RUNS executions or $FUZZ_SECONDS s, whichever came"
    echo "first (the long form's defaults: 100000000 executions or 3600 s), from its seed"
    echo "corpus \`fuzz/corpus/<target>/\`, with \`-rss_limit_mb=2048\`. Coverage is libFuzzer's"
    echo "last \`cov:\` (edges) and \`ft:\` (features); the corpus is its last \`corp:\`"
    echo "(inputs / bytes), seeds included."
    echo
    echo "| target | executions | seconds | exec/s | cov | ft | corpus | crashes |"
    echo "|---|---:|---:|---:|---:|---:|---:|---|"
} >"$FIGURES"

# One number from libFuzzer's stats line: field NAME STATS.
field() { grep -oE "$1: [0-9]+" <<<"$2" | head -n 1 | awk '{print $2}' || true; }

crashed=()
for t in "${targets[@]}"; do
    echo "-- $t"
    log="$scratch/$t.log"
    mkdir -p "$scratch/corpus/$t"
    rm -rf "artifacts/$t"
    start=$(date +%s)
    status=ok
    cargo fuzz run "$t" "$scratch/corpus/$t" "corpus/$t" -- \
        -runs="$FUZZ_RUNS" -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 \
        >"$log" 2>&1 || status=failed
    seconds=$(($(date +%s) - start))
    # libFuzzer's last stats line, e.g.
    # "#123456 DONE cov: 812 ft: 2301 corp: 140/9876b lim: 4096 exec/s: 4115 rss: 61Mb"
    stats="$(grep -E '^#[0-9]+[[:space:]]' "$log" | tail -n 1 || true)"
    execs="$(sed -E 's/^#([0-9]+).*/\1/' <<<"$stats")"
    corp="$(grep -oE 'corp: [0-9]+/[0-9]+[a-zA-Z]*' <<<"$stats" | awk '{print $2}' || true)"
    artifacts=""
    for f in "artifacts/$t"/*; do
        [ -f "$f" ] || continue
        artifacts="$artifacts fuzz/$f"
    done
    if [ "$status" = failed ] || [ -n "$artifacts" ]; then
        crashed+=("$t")
        result="**${artifacts# }**"
        [ -n "$artifacts" ] || result="**failed, no artifact (see $log)**"
        echo "$t: FAILED after ${seconds}s; log $log"
        grep -E -A2 "panicked at|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)" "$log" | head -n 20 || true
    else
        result=0
        echo "$t: ${execs:-?} executions in ${seconds}s"
    fi
    speed="$(field exec/s "$stats")"
    cov="$(field cov "$stats")"
    ft="$(field ft "$stats")"
    echo "| $t | ${execs:--} | $seconds | ${speed:--} | ${cov:--} | ${ft:--} | ${corp:--} | $result |" >>"$FIGURES"
done

echo "== figures: $FIGURES"
cat "$FIGURES"
echo "corpora found and logs: $scratch"
if [ "${#crashed[@]}" -ne 0 ]; then
    echo "crashed: ${crashed[*]}" >&2
    exit 1
fi
