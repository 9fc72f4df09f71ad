#!/usr/bin/env python
"""One prepared GPU check of dale_nbdev: every CUDA path of the engine, throughput, and a real MNIST model, in one run
of under 10 minutes on one GPU. The logic is `dale_nbdev.gpu_check` (chapter `nbs/17_gpu_check.ipynb`); this file
parses the command line and calls `run_check`.

    python benchmarks/gpu_check.py --out results/gpu              # GPU: < 10 minutes, MNIST from DALE_DATA or ./data
    python benchmarks/gpu_check.py --tiny --out /tmp/gpu_check    # seconds: tiny networks and sizes (CPU or GPU)
"""
import argparse, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path: sys.path.insert(0, str(ROOT))      # the repository's package, installed or not

from dale_nbdev.gpu_check import STAGES, CheckOptions, run_check


def parse_args(argv=None) -> CheckOptions:
    "`CheckOptions` from the command line."
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--out', default='results/gpu', help='output folder (default: results/gpu)')
    p.add_argument('--data', default=None, help='data root with MNIST (default: env DALE_DATA, else ./data)')
    p.add_argument('--tiny', action='store_true', help='tiny networks and sizes: seconds, on the CPU or a GPU')
    p.add_argument('--device', default=None, help="'cuda' or 'cpu' (default: CUDA if available)")
    p.add_argument('--stages', nargs='+', choices=STAGES, default=list(STAGES), help='run only these stages')
    p.add_argument('--budget', type=float, default=None, help="total seconds (default: the size's, 550 full); "
                   'stage budgets are scaled to it')
    p.add_argument('--work', default=None, help='scratch folder for checkpoints and logs (default: a temporary one)')
    p.add_argument('--keep-work', action='store_true', help='keep the scratch folder')
    p.add_argument('--in-process', action='store_true', help='run the stages in this process (no hard time limits)')
    a = p.parse_args(argv)
    return CheckOptions(out=a.out, data=a.data, tiny=a.tiny, device=a.device, stages=a.stages, budget=a.budget,
                        work=a.work, keep_work=a.keep_work, isolate=not a.in_process)


if __name__ == '__main__':
    run_check(parse_args())
