#!/usr/bin/env bash
# One prepared GPU check (~8 minutes on one GPU): results in results/gpu/ (or the folder given). See nbs/17_gpu_check.ipynb.
cd "$(dirname "$0")/.." && exec python3 benchmarks/gpu_check.py --out "${1:-results/gpu}" "${@:2}"
