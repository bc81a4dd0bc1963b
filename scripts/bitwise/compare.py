"""compare.py A B: every file of two output trees (scripts/bitwise/run.sh, or two experiment
results) bit for bit: HDF5 datasets as bytes and attributes (shard and provenance paths
aside), CSV byte for byte, JSON with timings and paths dropped. Exit 1 on a difference."""
import sys, os, json, h5py, numpy as np
A, B = sys.argv[1], sys.argv[2]
bad = 0
def h5eq(a, b):
    global bad
    fa, fb = h5py.File(a, 'r'), h5py.File(b, 'r')
    names = []
    fa.visit(names.append)
    namesb = []; fb.visit(namesb.append)
    if sorted(names) != sorted(namesb): print('DIFF objects', a); bad += 1
    for n in names:
        oa, ob = fa[n], fb[n]
        if isinstance(oa, h5py.Dataset):
            va, vb = oa[()], ob[()]
            if 'shards' in n or 'provenance' in n: continue
            if va.dtype.kind == 'f':
                if not np.array_equal(va.view(np.uint8), vb.view(np.uint8)): print('DIFF', a, n); bad += 1
            elif not np.array_equal(va, vb): print('DIFF', a, n); bad += 1
    n = 0
    for k, v in fa.attrs.items():
        if k in ('created_by',): continue
        if k == 'provenance':
            pa, pb = (json.loads(bytes(np.asarray(x).tobytes()).rstrip(b'\0').decode()) for x in (v, fb.attrs[k]))
            if strip(pa) != strip(pb): print('DIFF attr', a, k); bad += 1
            continue
        if not np.array_equal(np.asarray(v), np.asarray(fb.attrs[k])): print('DIFF attr', a, k); bad += 1
def strip(o):
    if isinstance(o, dict):
        return {k: strip(v) for k, v in o.items() if not (k in ('timing_s', 'timing', 'seconds', 'total_s', 'path', 'train_shards', 'statistics', 'peak_rss') or k.endswith('_s') or (k == 'test' and isinstance(v, str)) or k.startswith('timing_s.') or k.endswith('.seconds'))}
    if isinstance(o, list): return [strip(v) for v in o]
    return o
for root, _, files in os.walk(A):
    for f in files:
        a = os.path.join(root, f); b = os.path.join(B, os.path.relpath(a, A))
        if not os.path.exists(b): print('MISSING', b); bad += 1; continue
        if f.endswith('.h5'): h5eq(a, b)
        elif f.endswith('.json'):
            if strip(json.load(open(a))) != strip(json.load(open(b))): print('DIFF', a); bad += 1
        elif f.endswith('.csv'):
            if open(a).read() != open(b).read(): print('DIFF', a); bad += 1
print('compared', A, B, 'differences:', bad)
sys.exit(1 if bad else 0)
