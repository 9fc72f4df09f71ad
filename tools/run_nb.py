#!/usr/bin/env python3
"""Execute notebooks in place and keep their outputs (figures, printed checks) for the docs.

Cells flagged with settings.ini's `tst_flags` (slow, gpu) are skipped exactly as `nbdev_test`
skips them, so the saved outputs are those of the CI/smoke path. Usage, from the repo root:
`python tools/run_nb.py nbs/01_gbm.ipynb [more.ipynb ...]`; then `nbdev_clean`."""
import os, sys, time
from pathlib import Path
from configparser import ConfigParser
from execnb.nbio import read_nb, write_nb
from execnb.shell import CaptureShell

def skip_flags():
    cfg = ConfigParser(); cfg.read('settings.ini')
    return set(cfg['DEFAULT'].get('tst_flags', '').split())

def flagged(cell, flags):
    if cell.cell_type != 'code': return True
    for line in cell.source.splitlines():
        l = line.strip()
        if not l.startswith('#|'): break
        words = l[2:].replace(':', ' ').split()
        if words and (words[0] in flags or (words[0] == 'eval' and 'false' in [w.lower() for w in words[1:]])): return True
    return False

def run(fn, flags):
    fn = Path(fn).absolute()
    nb = read_nb(fn)
    for c in nb.cells:
        if c.cell_type == 'code': c.outputs, c.execution_count = [], None
    os.environ.setdefault('MPLBACKEND', 'module://matplotlib_inline.backend_inline')
    sh = CaptureShell(fn, mpl_format='png')  # plain PNG: retina doubles the committed size
    t = time.time(); cwd = os.getcwd(); os.chdir(fn.parent)
    try: sh.run_all(nb, exc_stop=True, preproc=lambda c: flagged(c, flags))
    finally: os.chdir(cwd)
    write_nb(nb, fn)
    print(f'{fn.name}: ran in {time.time()-t:.1f}s, {fn.stat().st_size/1e6:.2f} MB')

if __name__ == '__main__':
    sys.path.insert(0, str(Path('.').absolute()))  # the repo root, as nbdev_test does
    flags = skip_flags()
    for f in sys.argv[1:]: run(f, flags)
