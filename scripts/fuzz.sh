#!/usr/bin/env bash
# Fuzzes one parser with AFL++ and SharpFuzz (docs/fuzzing.md).
#   scripts/fuzz.sh TARGET SECONDS        e.g. scripts/fuzz.sh mqtt5 600      (also 600s)
#   scripts/fuzz.sh TARGET EXECSx         e.g. scripts/fuzz.sh mqtt5 1000000x (stops after ~that many executions)
#   scripts/fuzz.sh all EXECSx|SECONDS    every target, one after another (one afl-fuzz at a time)
# Targets: mqtt311 mqtt5 proxyv2 websocket policy ocsp crl. Builds Broker.Fuzz into .fuzz-build/ (the normal
# bin/ stays uninstrumented), instruments the broker's assemblies with the `sharpfuzz` tool of .config/dotnet-tools.json,
# then runs one afl-fuzz process (one core) from Broker.Fuzz/corpus/TARGET. Findings: .fuzz-build/findings/TARGET.
# Exits non-zero when afl-fuzz saved a crash or a hang. Environment: FUZZ_TIMEOUT_MS (per input, default 5000),
# FUZZ_MAX_SECONDS (bound on an EXECSx run, default 7200), FUZZ_RESUME=1 (continue the previous findings),
# FUZZ_NO_BUILD=1 (reuse the last build, e.g. when running several targets in a row).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

targets="mqtt311 mqtt5 proxyv2 websocket policy ocsp crl"
if [ $# -ne 2 ] || ! grep -qw -- "$1" <<<"$targets all" || ! [[ "$2" =~ ^[0-9]+[sx]?$ ]]; then
  echo "usage: scripts/fuzz.sh TARGET SECONDS|EXECSx   (targets: $targets)" >&2
  exit 2
fi
target="$1"; bound="$2"
if [ "$target" = all ]; then
  status=0; first=1
  for t in $targets; do
    if [ $first = 1 ]; then "$0" "$t" "$bound" || status=1; else FUZZ_NO_BUILD=1 "$0" "$t" "$bound" || status=1; fi
    first=0
  done
  exit $status
fi
if [[ "$bound" == *x ]]; then
  limit=(-E "${bound%x}" -V "${FUZZ_MAX_SECONDS:-7200}")
else
  limit=(-V "${bound%s}")
fi

if ! command -v afl-fuzz >/dev/null 2>&1; then
  echo "fuzz.sh: installing afl++"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends afl++ >/dev/null
fi

build="$root/.fuzz-build"
out="$build/bin/Broker.Fuzz/Release/net10.0"
inst="$build/instrumented"
if [ "${FUZZ_NO_BUILD:-0}" != 1 ] || [ ! -f "$out/Broker.Fuzz.dll" ]; then
  echo "fuzz.sh: building Broker.Fuzz into $build"
  OMNI_BUILD_ROOT="$build" dotnet build Broker.Fuzz -c Release -nologo -v q -clp:ErrorsOnly
fi
dotnet tool restore >/dev/null

# Instrument a fresh copy each time: sharpfuzz rewrites assemblies in place and refuses to do it twice.
rm -rf "$inst"; cp -r "$out" "$inst"
for dll in Broker.Mqtt.dll Broker.Auth.dll Broker.Policy.dll omnibroker.dll YamlDotNet.dll; do
  dotnet sharpfuzz "$inst/$dll" >/dev/null
done
echo "fuzz.sh: instrumented Broker.Mqtt, Broker.Auth, Broker.Policy, omnibroker (Broker.Host), YamlDotNet"

findings="$build/findings/$target"
input=(-i "$root/Broker.Fuzz/corpus/$target")
if [ "${FUZZ_RESUME:-0}" = 1 ] && [ -d "$findings" ]; then input=(-i -); else rm -rf "$findings"; fi
mkdir -p "$(dirname "$findings")"

# dotnet is not instrumented itself: SharpFuzz's fork server inside Broker.Fuzz speaks AFL's protocol.
# No core binding (the machine is shared); no UI; missing core dumps do not matter for managed crashes.
export AFL_SKIP_BIN_CHECK=1 AFL_NO_UI=1 AFL_NO_AFFINITY=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1
export AFL_FAST_CAL=1 AFL_NO_WARN_INSTABILITY=1 DOTNET_TieredPGO=0 DOTNET_CLI_TELEMETRY_OPTOUT=1
echo "fuzz.sh: afl-fuzz ${input[*]} -o $findings -t ${FUZZ_TIMEOUT_MS:-5000} ${limit[*]} -- dotnet Broker.Fuzz.dll $target"
status=0
afl-fuzz "${input[@]}" -o "$findings" -t "${FUZZ_TIMEOUT_MS:-5000}" -m none "${limit[@]}" \
  -- dotnet "$inst/Broker.Fuzz.dll" "$target" > "$build/afl-$target.log" 2>&1 || status=$?

stats="$findings/default/fuzzer_stats"
if [ ! -f "$stats" ]; then
  tail -n 30 "$build/afl-$target.log" >&2
  echo "fuzz.sh: afl-fuzz did not run (exit $status)" >&2
  exit 1
fi
get() { sed -n "s/^$1 *: *//p" "$stats"; }
start=$(get start_time); last=$(get last_update); execs=$(get execs_done)
seconds=$((last - start)); [ "$seconds" -gt 0 ] || seconds=1
crashes=$(get saved_crashes); hangs=$(get saved_hangs)
echo "fuzz.sh: $target: $execs executions in ${seconds} s ($((execs / seconds)) exec/s), corpus $(get corpus_count), edges $(get edges_found), stability $(get stability), crashes $crashes, hangs $hangs"
if [ "$crashes" != 0 ] || [ "$hangs" != 0 ]; then
  echo "fuzz.sh: findings in $findings/default/{crashes,hangs}; replay: dotnet $out/Broker.Fuzz.dll $target FILE" >&2
  exit 1
fi
