#!/usr/bin/env python3
"""Write README.md from nbs/index.ipynb without Quarto (which `nbdev_readme` needs).

Markdown cells are copied; the title cell's `> description` becomes a quote; code cells that are
not hidden (`#| hide`) are shown as Python blocks with their text outputs. Run from the repo root:
`python tools/nb2readme.py` (use `--check` to fail when README.md is out of date)."""
import json, re, sys
from pathlib import Path

def cell_text(c): return ''.join(c['source']) if isinstance(c['source'], list) else c['source']

def render(nb_path='nbs/index.ipynb'):
    nb = json.loads(Path(nb_path).read_text(encoding='utf-8'))
    parts = []
    for c in nb['cells']:
        src = cell_text(c).strip('\n')
        if c['cell_type'] == 'markdown':                       # README sits one level up: images and chapters
            parts.append(re.sub(r'\]\(([\w.-]+\.ipynb)\)', r'](nbs/\1)', src.replace('](images/', '](nbs/images/')))
        elif c['cell_type'] == 'code':
            lines = src.splitlines()
            if any(l.strip().startswith('#|') and ('hide' in l or 'export' in l or 'default_exp' in l) for l in lines): continue
            code = '\n'.join(l for l in lines if not l.strip().startswith('#|'))
            if code.strip(): parts.append('```python\n' + code + '\n```')
            outs = [''.join(o.get('text', '')) for o in c.get('outputs', []) if o.get('output_type') == 'stream']
            if any(outs): parts.append('```\n' + ''.join(outs).rstrip('\n') + '\n```')
    header = '<!-- generated from nbs/index.ipynb by tools/nb2readme.py: edit the notebook, not this file -->\n\n'
    return header + '\n\n'.join(parts) + '\n'

if __name__ == '__main__':
    text = render()
    if '--check' in sys.argv:
        if Path('README.md').read_text(encoding='utf-8') != text:
            sys.exit('README.md is out of date: run `python tools/nb2readme.py`')
    else: Path('README.md').write_text(text, encoding='utf-8')
