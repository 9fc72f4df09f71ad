#!/usr/bin/env python3
"""Reading time of each chapter, as the README's reading paths state it: prose at 200 words a minute plus code at
20 lines a minute (hidden cells and `#|` directives not counted; outputs are looked at, not timed). Usage, from the
repository root: `python tools/reading_times.py [nbs/XX.ipynb ...]` (default: every chapter)."""
import json, math, re, sys
from pathlib import Path

WORDS_PER_MIN, CODE_LINES_PER_MIN = 200, 20

def reading_minutes(path) -> tuple:
    "(minutes, prose words, code lines) of one notebook."
    words = lines = 0
    for c in json.loads(Path(path).read_text())['cells']:
        src = ''.join(c['source']) if isinstance(c['source'], list) else c['source']
        if c['cell_type'] == 'markdown': words += len(re.findall(r'\S+', src))
        elif c['cell_type'] == 'code':
            body = src.splitlines()
            if any(l.strip().startswith('#|') and 'hide' in l for l in body): continue
            lines += sum(1 for l in body if l.strip() and not l.strip().startswith('#|'))
    return words / WORDS_PER_MIN + lines / CODE_LINES_PER_MIN, words, lines

if __name__ == '__main__':
    paths = sys.argv[1:] or sorted(str(p) for p in Path('nbs').glob('[0-9]*.ipynb'))
    total = 0.0
    for p in paths:
        m, w, l = reading_minutes(p); total += m
        print(f"{Path(p).stem:22s} {w:6d} words {l:5d} code lines  {5 * math.ceil(m / 5):4d} min")
    print(f"{'total':22s} {total / 60:.1f} h")
