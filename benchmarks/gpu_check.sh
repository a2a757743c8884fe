#!/bin/bash
# A GPU smoke check (not part of CI; needs a CUDA machine with lewm_rl installed):
#   bash benchmarks/gpu_check.sh
# Trains Dreamer (Gymnasium and PettingZoo envs) and PPO in imagination on CUDA, the same
# Dreamer run on one CPU thread for a wall-time comparison, and resumes a CUDA run with a larger
# budget. Prints each run's exit code, wall time and final evaluation returns.
set -u
RUNS=$(mktemp -d)
run() {  # name, timeout, args... (RESULT_DIR overrides where results.json is read)
  local name=$1 t=$2; shift 2
  local s e rc
  s=$(date +%s.%N)
  timeout "$t" python -m lewm_rl.train --no-progress --run-dir "$RUNS/$name" "$@" \
    > "$RUNS/$name.log" 2>&1
  rc=$?
  e=$(date +%s.%N)
  echo "$name rc=$rc wall=$(python -c "print(round($e - $s, 1))")s"
  [ $rc -eq 0 ] || tail -3 "$RUNS/$name.log"
  python -c "import json, sys; d = json.load(open(sys.argv[1])); print({k: v for k, v in d.items() if 'return' in k or k == 'step'})" "${RESULT_DIR:-$RUNS/$name}/results.json"
}
python -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
run cuda 100 --env SocialNegotiation-v0 --device cuda --steps 2000 --seed 0 --threads 1
run cpu 100 --env SocialNegotiation-v0 --device cpu --steps 2000 --seed 0 --threads 1
run pz_cuda 45 --env social_negotiation_v0 --device cuda --steps 1000 --seed 0 --prefill 500
run ppo_imag_cuda 80 --env SocialNegotiation-v0 --agent ppo-imagination --device cuda \
  --steps 1000 --seed 0 --prefill 500
RESULT_DIR=$RUNS/cuda run resume_cuda 60 --env SocialNegotiation-v0 --device cuda --steps 2500 --resume "$RUNS/cuda"
