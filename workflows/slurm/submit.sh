#!/usr/bin/env bash
# Submit taupet-bids to Slurm: one array task per participant, then a dependent group job.
#
#   workflows/slurm/submit.sh BIDS_DIR OUTPUT_DIR [options] [-- extra taupet-bids arguments]
#
# Options:
#   --sif FILE              run inside this Apptainer/Singularity image (else the venv or PATH)
#   --venv DIR              run DIR/bin/taupet-bids (when no container runtime is used)
#   --work DIR              work folders, one per participant (default: OUTPUT_DIR/../taupet-work)
#   --logs DIR              logs, status and summary (default: OUTPUT_DIR/../taupet-logs)
#   --participants "A B"    these participants (default: every sub-* folder in BIDS_DIR)
#   --rerun-failed          only participants whose last attempt did not succeed
#   --cpus N                cores per participant (default 2); --omp N threads per step (default N)
#   --mem SIZE              memory per participant (default 6G); --time HH:MM:SS (default 01:00:00)
#   --max-parallel K        at most K participants at once (array throttle %K)
#   --sbatch-args "..."     more sbatch options for both jobs (partition, account, qos, ...)
#   --no-group              summary only, no group level
#   --dry-run               print the sbatch commands instead of running them
# Prints the array job id and the group job id. Reruns reuse each participant's work folder,
# so finished steps are not recomputed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
usage() { sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

[[ $# -ge 2 ]] || usage 2
bids="$(realpath "$1")"; out="$(realpath -m "$2")"; shift 2
sif="" venv="" work="" logs="" participants="" rerun_failed=0 cpus=2 omp="" mem=6G
time_limit=01:00:00 max_parallel="" sbatch_args="" no_group=0 dry_run=0
extra=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --sif) sif="$(realpath "$2")"; shift 2 ;;
        --venv) venv="$(realpath "$2")"; shift 2 ;;
        --work) work="$(realpath -m "$2")"; shift 2 ;;
        --logs) logs="$(realpath -m "$2")"; shift 2 ;;
        --participants) participants="$2"; shift 2 ;;
        --rerun-failed) rerun_failed=1; shift ;;
        --cpus) cpus="$2"; shift 2 ;;
        --omp) omp="$2"; shift 2 ;;
        --mem) mem="$2"; shift 2 ;;
        --time) time_limit="$2"; shift 2 ;;
        --max-parallel) max_parallel="$2"; shift 2 ;;
        --sbatch-args) sbatch_args="$2"; shift 2 ;;
        --no-group) no_group=1; shift ;;
        --dry-run) dry_run=1; shift ;;
        -h|--help) usage 0 ;;
        --) shift; extra=("$@"); break ;;
        *) echo "unknown option $1" >&2; usage 2 ;;
    esac
done
[[ -d "$bids" ]] || { echo "no BIDS folder at $bids" >&2; exit 2; }
work="${work:-$(dirname "$out")/taupet-work}"
logs="${logs:-$(dirname "$out")/taupet-logs}"
mkdir -p "$out" "$work" "$logs/status"

if [[ -n "$participants" ]]; then
    labels=$(tr ' ,' '\n\n' <<< "$participants" | sed 's/^sub-//' | sed '/^$/d')
else
    labels=$(find "$bids" -mindepth 1 -maxdepth 1 -type d -name 'sub-*' -printf '%f\n' |
             sed 's/^sub-//' | sort)
fi
if [[ $rerun_failed -eq 1 ]]; then
    todo=""
    for label in $labels; do
        row="$logs/status/sub-$label.tsv"
        if [[ ! -s "$row" || "$(cut -f2 "$row")" != ok ]]; then todo+="$label"$'\n'; fi
    done
    labels="$todo"
fi
labels="$(sed '/^$/d' <<< "$labels")"
n=$(grep -c . <<< "$labels" || true)
if [[ $n -eq 0 ]]; then echo "nothing to submit: every selected participant succeeded"; exit 0; fi

stamp="$(date -u +%Y%m%dT%H%M%S)-$$"
list="$logs/participants-$stamp.txt"
args_file="$logs/args-$stamp.txt"
printf '%s\n' "$labels" > "$list"
printf '%s\n' "${extra[@]}" | sed '/^$/d' > "$args_file"
# Every participant of the dataset for the summary, not just this submission's.
all_list="$logs/participants-all.txt"
touch "$all_list"
sort -u "$list" "$all_list" | sed '/^$/d' > "$all_list.tmp"
mv "$all_list.tmp" "$all_list"

export TAUPET_BIDS="$bids" TAUPET_OUT="$out" TAUPET_WORK="$work" TAUPET_LOGS="$logs"
export TAUPET_LIST="$list" TAUPET_ARGS_FILE="$args_file" TAUPET_SIF="$sif" TAUPET_VENV="$venv"
export TAUPET_OMP="${omp:-$cpus}" TAUPET_NO_GROUP="$no_group" NIPYPE_NO_ET=1
export LOGNAME="${LOGNAME:-$(id -un)}"

array="1-$n${max_parallel:+%$max_parallel}"
# shellcheck disable=SC2206  # sbatch_args is a list of options on purpose
part_cmd=(sbatch --parsable --array="$array" --cpus-per-task="$cpus" --mem="$mem"
          --time="$time_limit" --output="$logs/slurm-%A_%a.out" $sbatch_args
          "$here/participant.sbatch")
if [[ $dry_run -eq 1 ]]; then
    echo "participants: $n ($list)"
    echo "${part_cmd[*]}"
    echo "sbatch --dependency=afterany:<array job> ... $here/group.sbatch"
    exit 0
fi
array_job="$("${part_cmd[@]}")"
array_job="${array_job%%;*}"
# The group job reads the summary over every participant submitted so far.
# shellcheck disable=SC2206
group_cmd=(sbatch --parsable --dependency="afterany:$array_job" --kill-on-invalid-dep=yes
           --output="$logs/slurm-group-%j.out" $sbatch_args "$here/group.sbatch")
group_job="$(TAUPET_LIST="$all_list" "${group_cmd[@]}")"
group_job="${group_job%%;*}"
echo "participants: $n ($list)"
echo "array job: $array_job"
echo "group job: $group_job"
