#!/usr/bin/env bash
# `cbtm launch --scheduler slurm` against a real single-node Slurm (scripts/slurm-local.sh):
# the whole tiny pipeline as a chain of job arrays, the experts data-parallel over 2 srun tasks
# each; then a failing expert: the others finish, eval is cancelled, the launch fails naming it;
# then a two-cell suite on Slurm (shared seed, one job chain per cell) and its no-op rerun.
#   tests/e2e/slurm_launch_test.sh BUILD_DIR
set -euo pipefail
src="$(cd "$(dirname "$0")/../.." && pwd)"
build="$(realpath "${1:?usage: slurm_launch_test.sh BUILD_DIR}")"
cbtm="$build/bin/cbtm"
work="$(mktemp -d "${TMPDIR:-/tmp}/cbtm-slurm-test.XXXXXX")"
export CBTM_SLURM_PORT=$((7000 + ($$ % 400) * 2))
fail() { echo "FAIL: $*" >&2; exit 1; }
as_root=()
cleanup() {
  local rc=$?
  if [ "$rc" -ne 0 ]; then  # say why: the daemons' and the jobs' last lines
    for f in "$work"/slurm/slurmctld.log "$work"/slurm/slurmd.log "$work"/run/logs/*; do
      [ -f "$f" ] && { echo "---- tail $f"; tail -n 15 "$f"; }
    done
  fi
  "${as_root[@]}" "$src/scripts/slurm-local.sh" stop "$work/slurm" || true
  [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

# the daemons need root: directly, or through passwordless sudo
if [ "$(id -u)" -ne 0 ]; then
  sudo -n true 2>/dev/null || fail "needs root or passwordless sudo to start slurmd (scripts/slurm-local.sh)"
  as_root=(sudo -n)
fi
eval "$("${as_root[@]}" "$src/scripts/slurm-local.sh" start "$work/slurm")"
cfg="$src/configs/tiny.yaml"
common=(--set launch.slurm.cpus_per_task=1 --set launch.slurm.poll_s=0.5 --set launch.procs_per_expert=2
        --set launch.slurm.time=00:10:00)

echo "== launch on Slurm"
out="$work/run"
"$cbtm" launch "$cfg" --out "$out" --scheduler slurm "${common[@]}" 2>&1 | tee "$work/launch.log"
[ -f "$out/results.json" ] || fail "no results.json"
for j in expert-000 expert-001 baseline-dense seed eval; do
  [ -f "$out/stages/$j.json" ] || fail "stage $j did not finish"
done
grep -q "submitted cbtm-experts as job [0-9]* array 0,1" "$work/launch.log" || fail "no expert array"
grep -q -- "--array=0,1" "$out/slurm/cbtm-experts.sbatch" || fail "sbatch script has no array"
grep -q -- "--time=00:10:00" "$out/slurm/cbtm-experts.sbatch" || fail "resources not in the sbatch script"
grep -q "srun" "$out/slurm/cbtm-experts.sbatch" || fail "data-parallel expert not started through srun"
# the submitting process's OpenMP choice is for its own cores: the job chooses on its node
grep -q "^unset CBTM_OPENMP_POLICY" "$out/slurm/cbtm-experts.sbatch" || fail "sbatch script keeps the submitter's OpenMP policy"
for t in 0 1; do
  log=$(ls "$out"/logs/slurm-cbtm-experts-*_"$t".out)
  grep -q "data parallel rank 1 of 2 (SLURM_PROCID/SLURM_NTASKS" "$log" || fail "expert $t: no rank 1 of 2 in $log"
  grep -q "expert-00$t: trained" "$log" || fail "expert $t did not train ($log)"
done
python3 - "$out/results.json" <<'PY' || fail "results.json lacks the ensembles"
import json, sys
r = json.load(open(sys.argv[1]))
names = {m["name"] for m in r["models"]}
assert {"dense", "c-btm top1", "c-btm all"} <= names, names
PY

echo "== a failing expert"
mv "$out/clusters/cluster-001" "$work/cluster-001.saved"
set +e
"$cbtm" launch "$cfg" --out "$out" --scheduler slurm "${common[@]}" --redo experts > "$work/fail.log" 2>&1
rc=$?
set -e
cat "$work/fail.log"
[ "$rc" -eq 2 ] || fail "launch with a failing expert exited $rc, expected 2"
grep -q "expert-001 (job cbtm-experts" "$work/fail.log" || fail "the failure does not name expert-001"
grep -q "eval (job cbtm-eval" "$work/fail.log" || fail "the failure does not name the cancelled eval"
[ -f "$out/stages/expert-000.json" ] || fail "expert-000 should have finished"
[ ! -f "$out/stages/expert-001.json" ] || fail "expert-001 cannot have finished"
echo "== resubmitting only what is missing"
mv "$work/cluster-001.saved" "$out/clusters/cluster-001"
"$cbtm" launch "$cfg" --out "$out" --scheduler slurm "${common[@]}" 2>&1 | tee "$work/retry.log"
grep -q "array 1" "$work/retry.log" || fail "the retry should submit expert 1 only"
[ -f "$out/stages/eval.json" ] || fail "eval did not finish after the retry"

echo "== a second launch while the first one's jobs are queued"
nw="$work/nowait"
"$cbtm" launch "$cfg" --out "$nw" --scheduler slurm --no-wait "${common[@]}" 2>&1 | tee "$work/nowait1.log"
[ -f "$nw/slurm/submitted.json" ] || fail "the submitted job ids were not recorded"
set +e
"$cbtm" launch "$cfg" --out "$nw" --scheduler slurm --no-wait "${common[@]}" > "$work/nowait2.log" 2>&1
rc=$?
set -e
cat "$work/nowait2.log"
[ "$rc" -eq 2 ] || fail "a --no-wait launch beside queued jobs exited $rc, expected 2"
grep -q "are still in the queue" "$work/nowait2.log" || fail "the refusal does not name the queued jobs"
if grep -q "submitted cbtm-" "$work/nowait2.log"; then fail "a launch beside queued jobs submitted more"; fi
"$cbtm" launch "$cfg" --out "$nw" --scheduler slurm "${common[@]}" 2>&1 | tee "$work/nowait3.log"
grep -q "jobs of an earlier launch are still in the queue" "$work/nowait3.log" || fail "the waiting launch did not wait for the queued jobs"
[ -f "$nw/results.json" ] || fail "no results.json after waiting"

echo "== a suite on Slurm: one shared seed, then every cell as its own chain of job arrays"
cat > "$work/suite.yaml" <<EOF
base: $cfg
set:
  eval.docs: 12
  baselines: []
  launch.slurm.cpus_per_task: 1
  launch.slurm.poll_s: 0.5
  launch.slurm.time: "00:10:00"
dense_from: {k: "1"}
axes:
  - {name: k, key: clusterer.k, values: [1, 2]}
figures:
  - {name: ppl, x: k, series: model, models: [c-btm all, dense]}
EOF
suite_out="$work/suite"
"$cbtm" suite "$work/suite.yaml" --out "$suite_out" --scheduler slurm 2>&1 | tee "$work/suite.log"
for c in k=1 k=2; do
  [ -f "$suite_out/cells/$c/stages/eval.json" ] || fail "suite cell $c did not finish"
  [ -f "$suite_out/cells/$c/slurm/cbtm-experts.sbatch" ] || fail "suite cell $c was not submitted to Slurm"
  [ ! -d "$suite_out/cells/$c/seed/final" ] || fail "suite cell $c trained its own seed"
done
ls "$suite_out"/shared/seed-*/slurm/*.sbatch > /dev/null || fail "the shared seed did not run on Slurm"
grep -q "| 2 | " "$suite_out/results.md" || fail "results.md lacks the k=2 row"
[ -f "$suite_out/figures/ppl.dat" ] || fail "no figure data"
"$cbtm" suite "$work/suite.yaml" --out "$suite_out" --scheduler slurm 2>&1 | tee "$work/suite2.log"
grep -q "cell 2/2 k=2: finished earlier, skipped" "$work/suite2.log" || fail "a finished suite cell was not skipped"
if grep -q "submitted cbtm-" "$work/suite2.log"; then fail "the rerun of a finished suite submitted jobs"; fi
echo "PASS"
