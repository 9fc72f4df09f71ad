#!/usr/bin/env python3
"""Fail when the prose promises a figure or table that the notebook does not store.

The rule: a markdown cell that points *down* at a figure or table (`the figure below`, `the table below`, `the grid
below`, `(figure below)`, `Below, ...`, `the cell below prints ...`; see `PROMISE`) must be followed by a code cell
that stores outputs: a figure (`image/png`), a table (text/markdown, text/html) or printed text. "Followed by" means
the first code cell after the markdown cell, not counting cells flagged `#| hide` or `#| export` (set-up and library
code the reader does not see as a result). Cells flagged `#| gpu` or `#| slow` are not run where outputs are
stored, so a promise pointing at one is broken.
A promise that is meant for a reader running the notebook can opt out by ending its sentence with the marker
`<!-- no stored output -->`. Usage, from the repository root: `python tools/check_outputs.py [nbs/XX.ipynb ...]`
(default: every notebook under nbs/); exit status 1 and one line per broken promise when any is found."""
import json, re, sys
from pathlib import Path

NOUN = r'(?:figure|figures|table|tables|grid|grids|plot|plots|histogram|histograms|panel|panels|picture|image|images|chart)'
SHOW = r'(?:shows?|prints?|plots?|draws?|lists?|compares?|counts?|tabulates?|displays?)'
PROMISE = re.compile('|'.join([
    rf'\b(?:the|this|a|its|their)\s+(?:[\w-]+\s+){{0,3}}{NOUN}\s+below\b',   # "the figure below", "the table below"
    rf'\(\s*{NOUN}\s+below\s*\)',                                       # "(figure below)"
    r'(?:^|[.:]\s+)Below[,:]',                                           # "Below, 20 paths ...", "Below: the table"
    rf'\bthe\s+cells?\s+below\s+{SHOW}\b']), re.I | re.M)                  # "the cell below counts ..."
OPT_OUT = '<!-- no stored output -->'
SKIP = ('gpu', 'slow')
QUIET = ('hide', 'export', 'exports')

def _src(cell): return ''.join(cell['source']) if isinstance(cell['source'], list) else cell['source']

def _flags(src):
    out = set()
    for line in src.splitlines():
        if not line.strip().startswith('#|'): break
        out.update(line.strip()[2:].replace(':', ' ').split()[:1])
    return out

def _shows(cell) -> bool:
    "Whether a code cell stores a figure, a table or printed text."
    for o in cell.get('outputs', []):
        if o.get('output_type') == 'stream' and _src({'source': o.get('text', '')}).strip(): return True
        if set(o.get('data', {})) & {'image/png', 'image/svg+xml', 'text/markdown', 'text/html', 'text/plain'}: return True
    return False

def broken_promises(path) -> list:
    "(cell index, promise text) of every promise in notebook `path` that no stored output keeps."
    cells, out = json.loads(Path(path).read_text())['cells'], []
    for i, c in enumerate(cells):
        if c['cell_type'] != 'markdown': continue
        src = _src(c)
        promises = [m.group(0) for m in PROMISE.finditer(src)]
        if not promises or OPT_OUT in src: continue
        nxt = next((d for d in cells[i + 1:] if d['cell_type'] == 'code' and not _flags(_src(d)) & set(QUIET)), None)
        if nxt is None or _flags(_src(nxt)) & set(SKIP) or not _shows(nxt): out.append((i, promises[0].strip()))
    return out

def main(paths) -> int:
    paths = paths or sorted(str(p) for p in Path('nbs').glob('*.ipynb'))
    bad = [(p, i, t) for p in paths for i, t in broken_promises(p)]
    for p, i, t in bad: print(f"{p}: markdown cell {i} promises {t!r} but the code cell after it stores no output")
    print(f"check_outputs: {len(paths)} notebooks, {len(bad)} promised figure(s)/table(s) without stored output")
    return 1 if bad else 0

if __name__ == '__main__': sys.exit(main(sys.argv[1:]))
