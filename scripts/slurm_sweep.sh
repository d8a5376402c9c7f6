#!/usr/bin/env bash
# Slurm job array: one sweep shard per array task, all writing into the same results folder.
# Each shard runs every N-th (task, config, seed) job; per-run locks and the "metrics.json means done"
# rule make re-submitting the array safe: finished runs are skipped, killed ones redone (a killed node's
# locks are taken over after --lock-timeout seconds without a heartbeat). Exit 3: another shard still held
# some runs when this one ended (listed as HELD in the log); re-submit later to pick up any left undone.
#
#   sbatch --array=0-15 scripts/slurm_sweep.sh \
#       --config paper --task conll03-ner,conll03-chunk --unmask all-codes --seeds 120-124 --output runs/llama2
#
#SBATCH --job-name=llm_unmask_sweep
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=8
#SBATCH --mem=64G
#SBATCH --time=24:00:00
#SBATCH --output=slurm-%A_%a.out
set -euo pipefail
cd "${SLURM_SUBMIT_DIR:-$(dirname "$0")/..}"
K="${SLURM_ARRAY_TASK_ID:?run this with sbatch --array=0-(N-1)}"
N="${SLURM_ARRAY_TASK_COUNT:?run this with sbatch --array=0-(N-1)}"
# Use the project's venv when present (created by scripts/setup.sh with TORCH_SPEC=torch EXTRAS=gpu,dev).
if [ -x .venv/bin/llm_unmask ]; then PATH="$PWD/.venv/bin:$PATH"; fi
exec llm_unmask sweep --shard "${K}/${N}" "$@"
