#!/usr/bin/env python
"""Throughput benchmark of the dale_nbdev score networks: a thin command line over `dale_nbdev.bench` (chapter 15,
nbs/15_benchmarks.ipynb). Measures training steps/s and images/s (fp32 eager vs the fast paths), FLOPs per step,
utilisation of the measured matmul peak, the fast paths' loss agreement with fp32, and ADLS sampling speed; writes
`bench_<size>_<device>.json` and `.md` (markdown tables) to `--out`, and prints the tables.

    python benchmarks/run.py --size full                      # GPU, batch 128, all four networks
    python benchmarks/run.py --size small --threads 2         # CPU, batch 8, paper widths
    python benchmarks/run.py --size smoke                     # seconds: narrow networks, batch 4
    python benchmarks/run.py --laptop --threads 2 --tag avx2  # end to end on this CPU -> results/bench/laptop_TAG.json
"""
import argparse, json, os, sys
from pathlib import Path
import torch
from dale_nbdev.bench import run_benchmarks, results_markdown, SPEED_CONFIGS, BENCH_MODELS, SIZES
from dale_nbdev.bench import laptop_benchmark, laptop_markdown

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--size', choices=sorted(SIZES), default=None, help="default: 'full' on CUDA, 'small' on the CPU")
    p.add_argument('--device', default=None, help="'cuda', 'cuda:1', 'cpu' (default: CUDA if available)")
    p.add_argument('--models', nargs='+', choices=sorted(BENCH_MODELS), help="default: the size's models")
    p.add_argument('--paths', nargs='+', choices=sorted(SPEED_CONFIGS), help="training configurations (fp32_eager is always run)")
    p.add_argument('--sample-paths', nargs='+', choices=sorted(SPEED_CONFIGS), help='sampling configurations')
    p.add_argument('--no-sample', action='store_true', help='skip the ADLS sampling benchmark')
    p.add_argument('--batch', type=int, help='batch size (training and sampling)')
    p.add_argument('--warmup', type=int, help='untimed warm-up steps (compilation happens here)')
    p.add_argument('--iters', type=int, help='timed training steps')
    p.add_argument('--sample-evals', type=int, help='timed ADLS score evaluations, rounded to whole noise levels of L (extrapolated to the full schedule)')
    p.add_argument('--repeat-baseline', type=int, choices=(0, 1), help="run fp32_eager again at the end to show drift (default: the size's)")
    p.add_argument('--threads', type=int, help='torch.set_num_threads (CPU runs)')
    p.add_argument('--out', default='bench_results', help='output folder (default: ./bench_results)')
    p.add_argument('--laptop', action='store_true', help='end-to-end CPU numbers of a shipped model (chapter 15, section 11)')
    p.add_argument('--tag', default=None, help='--laptop: name of the record, results/bench/laptop_TAG.json')
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads); os.environ['OMP_NUM_THREADS'] = str(a.threads)   # the timed subprocesses too
    if a.laptop:
        rec = laptop_benchmark()
        rec.update(command=' '.join(['python', 'benchmarks/run.py', *(sys.argv[1:] if argv is None else argv)]),
                   env={k: os.environ[k] for k in ('ATEN_CPU_CAPABILITY', 'ONEDNN_MAX_CPU_ISA') if k in os.environ},
                   load_average=os.getloadavg())
        out = Path('results/bench') / f"laptop_{a.tag or rec['cpu']['capability'].lower()}.json"
        out.parent.mkdir(parents=True, exist_ok=True); out.write_text(json.dumps(rec, indent=1) + '\n')
        print(laptop_markdown([rec]) + f"\n\nwrote {out}")
        return rec
    device = torch.device(a.device or ('cuda' if torch.cuda.is_available() else 'cpu'))
    size = a.size or ('full' if device.type == 'cuda' else 'small')
    res = run_benchmarks(size, device=device, models=a.models, paths=a.paths, sample_paths=a.sample_paths,
                         overrides=dict(batch=a.batch, warmup=a.warmup, iters=a.iters, sample_evals=a.sample_evals),
                         sample=not a.no_sample,
                         repeat_baseline=None if a.repeat_baseline is None else bool(a.repeat_baseline))
    res['command'] = ' '.join(['python', 'benchmarks/run.py', *sys.argv[1:]]) if argv is None else ' '.join(argv)
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    stem = f"bench_{size}_{device.type}"
    (out / f'{stem}.json').write_text(json.dumps(res, indent=1, default=str))
    md = results_markdown(res)
    (out / f'{stem}.md').write_text(md + '\n')
    print('\n' + md + f"\n\nwrote {out / (stem + '.json')} and {out / (stem + '.md')}")
    return res

if __name__ == '__main__':
    main()
