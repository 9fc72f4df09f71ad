#!/usr/bin/env python
"""One prepared GPU check of dale_nbdev: every CUDA path of the engine, throughput, and a real MNIST model, in one run
of under 10 minutes on one GPU (chapter `nbs/17_gpu_check.ipynb` says what it measures and why).

    python benchmarks/gpu_check.py --out results/gpu              # GPU: < 10 minutes, MNIST from DALE_DATA or ./data
    python benchmarks/gpu_check.py --tiny --out /tmp/gpu_check    # seconds: tiny networks and sizes (CPU or GPU)

Stages, each in its own process with a hard time limit (a stage that overruns is cut short and recorded as such;
an exception is recorded with its traceback and the run goes on with the next stage):
  env          torch, CUDA, GPU name and memory, measured matmul peaks, cached InceptionV3 FID weights, MNIST
  paths        fp32 eager, bf16 autocast, channels_last, TF32, fused AdamW, all eager switches together, on
               NCSN-Deeper (faithful and lean) and DDPM++: steps/s, images/s, MFU, loss agreement with fp32
  ddp          one DistributedDataParallel step in one process (NCCL on CUDA, gloo on the CPU) against a plain step
  compile      torch.compile alone and with every other switch, on the same networks and batches
  train_cpu    the `cpu` training preset on MNIST for ~3 minutes (steps set from a measured rate)
  train_paper  the paper's MNIST preset (NCSN-Deeper, batch 128) for ~2 minutes with the fastest passing path
  sample       1,000 samples of the train_cpu model by ADLS (Table 3) and by the log-space ODE (Heun, Karras grid),
               domain FID/KID against the MNIST test set next to the floor (a train subset of the same size);
               Inception FID/KID too when the FID weights are cached; sample grids as PNG
  prep         (in the background from the start, CPU only) the domain classifier and the floor
Writes `--out`/gpu_check.json (rewritten atomically after every stage), gpu_check.md (tables) and two PNG grids.
This file imports only the standard library at module level: torch and dale_nbdev are imported inside the stages.
"""
import argparse, contextlib, dataclasses, datetime, functools, json, math, os, signal, socket, subprocess, sys
import tempfile, time, traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path: sys.path.insert(0, str(ROOT))      # the repository's package, installed or not

MODELS = ('ncsn_deeper', 'ncsn_deeper_lean', 'ddpmpp')
STAGES = ('env', 'paths', 'ddp', 'compile', 'train_cpu', 'train_paper', 'sample')
CUDA_ONLY = {'tf32': 'TF32 is a mode of CUDA matmuls and cuDNN convolutions',
             'nccl': 'NCCL is CUDA only; the same DDP step ran with gloo'}
DATASHEET_BF16 = (('H200 NVL', 835.5e12), ('H100 NVL', 835.5e12), ('H200', 989.4e12), ('H100 PCIe', 756.5e12),
                  ('H100', 989.4e12), ('GH200', 989.4e12),
                  ('A100', 312e12), ('L40S', 362.1e12), ('L4', 121e12))
"""Dense bf16 tensor-core peaks from the vendor's datasheets (FLOP/s), by a substring of the device name, first match
(so the NVL parts, about 835 TFLOP/s dense, come before the SXM parts' 989)."""
INCEPTION_FILE = 'weights-inception-2015-12-05-6726825d.pth'   # torch-fidelity's FID InceptionV3, in torch hub's cache

SIZES = {
    'full': dict(
        batch=128, warmup=3, iters=10, peak_n=8192, model_kw={},
        paths=('fp32_eager', 'fast_eager', 'bf16', 'tf32', 'channels_last', 'fused_adamw'),
        compile_paths=('fast', 'compile'), compile_models=('ncsn_deeper_lean', 'ncsn_deeper', 'ddpmpp'),
        compile_backend='inductor', compile_min_left=25,
        ddp_model='ncsn_deeper_lean', ddp_kw={}, ddp_batch=16, ddp_iters=5,
        live_steps=3, cpu_over={}, calib_s=12, train_s=None, paper_over={}, paper_s=None, min_steps=2,
        n_samples=1000, sample_batch=1000, adls_levels=None, ode_steps=18, n_real=None,
        inception_sets=('floor', 'adls', 'ode_heun'), n_inception=None, inception_feature=2048,
        clf_kw={}, prep_threads=4,
        budgets=dict(env=20, paths=60, ddp=15, compile=180, train_cpu=130, train_paper=90, sample=45), total=550,
        grace=8),
    'tiny': dict(
        batch=4, warmup=1, iters=2, peak_n=256,
        model_kw=dict(ncsn_deeper=dict(ngf=8), ncsn_deeper_lean=dict(ngf=8),
                      ddpmpp=dict(nf=16, ch_mult=(1, 2), num_res_blocks=1)),
        paths=('fp32_eager', 'tf32', 'fast_eager'),
        compile_paths=('fast',), compile_models=('ddpmpp',), compile_backend='eager', compile_min_left=5,
        ddp_model='ncsn_deeper_lean', ddp_kw=dict(ngf=8), ddp_batch=4, ddp_iters=1,
        live_steps=1, cpu_over=dict(model_kw=dict(ch=8, ch_mult=[1, 2]), batch_size=8, n_train=512), calib_s=1,
        train_s=3, paper_over=dict(model_kw=dict(ngf=8), batch_size=4, n_train=256), paper_s=2, min_steps=2,
        n_samples=32, sample_batch=32, adls_levels=40, ode_steps=6, n_real=256,
        inception_sets=('adls',), n_inception=4, inception_feature=64,
        clf_kw=dict(epochs=1, n_train=1024), prep_threads=1,
        budgets=dict(env=300, paths=400, ddp=300, compile=400, train_cpu=300, train_paper=300, sample=400),
        total=2700, grace=30),
}
"""Sizes: `full` (one GPU, under 10 minutes) and `tiny` (seconds of work: tiny networks, a few steps, every path that is
not CUDA-only). Training and sampling stages of `full` run until their stage's deadline; `tiny` trains for `train_s`
and `paper_s` seconds after setting up, and its other budgets are generous, so a busy CPU does not cut it short."""

# ---------------------------------------------------------------------------------------------------------- helpers
def now_utc() -> str: return datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M:%S UTC')

def atomic_json(path, obj):
    "Write `obj` as JSON to `path` atomically (temporary file in the same folder, then `os.replace`)."
    path = Path(path); tmp = path.with_name(f'.{path.name}.tmp{os.getpid()}')
    tmp.write_text(json.dumps(obj, indent=1, default=str, allow_nan=True) + '\n'); os.replace(tmp, path)

def read_json(path, default=None):
    try: return json.loads(Path(path).read_text())
    except (OSError, ValueError): return default

class Skip(Exception):
    "A stage or item that cannot run here; the message is the reason."

class TimeUp(Exception):
    "Raised by a training callback when the stage's time guard fires."

class Recorder:
    "A stage's results, written to `path` (atomically) after every item, so a killed stage keeps what it measured."
    def __init__(self, path):
        self.path, self.data = Path(path), dict(status='running', result={})
        self.flush()
    def put(self, key, value):
        self.data['result'][key] = value; self.flush()
    def flush(self): atomic_json(self.path, self.data)

class Ctx:
    "What a stage needs: arguments, size, device, work folder, deadline."
    def __init__(self, a, work: Path, deadline: float):
        self.a, self.S, self.work, self.deadline = a, SIZES['tiny' if a.tiny else 'full'], work, deadline
        self.data, self.out = a.data, Path(a.out)
        self.cache = str(work / 'cache') if a.tiny else None       # tiny: a private classifier cache
    def left(self) -> float: return self.deadline - time.time()
    @functools.cached_property
    def device(self):
        import torch
        return torch.device(self.a.device or ('cuda' if torch.cuda.is_available() else 'cpu'))
    @property
    def cuda(self) -> bool: return self.device.type == 'cuda'
    def model_kw(self, name): return dict(self.S['model_kw'].get(name, {}))

def tb() -> str: return traceback.format_exc()[-6000:]

API_MODULES = ('sample', 'features', 'evaluate', 'train', 'bench', 'pf_ode', 'beyond', 'precond', 'samplers', 'data',
               'gbm', '_utils')

def api(name):
    "A public name of dale_nbdev from the first module of `API_MODULES` that defines it (names move between modules)."
    import importlib
    for m in API_MODULES:
        try: mod = importlib.import_module(f'dale_nbdev.{m}')
        except ImportError: continue
        if hasattr(mod, name): return getattr(mod, name)
    raise ImportError(f'dale_nbdev has no {name!r} in any of {API_MODULES}')

def speed_configs() -> dict:
    "The named speed configurations of `dale_nbdev.bench` (`SPEED_CONFIGS`, formerly `PATHS`)."
    from dale_nbdev import bench
    return getattr(bench, 'SPEED_CONFIGS', None) or bench.PATHS

def process_of(cfg):
    "The forward process of a training config (built from its data, or the GBM of its sigma and N)."
    if hasattr(cfg, 'build_process'): return cfg.build_process()
    from dale_nbdev.gbm import GBM
    return GBM(cfg.sigma, N=cfg.N)

def load_model(run, device):
    "(EMA model in eval mode, TrainConfig, process, step) of a run folder, whichever triple `load_run` returns."
    from dale_nbdev import train as T
    model, a, b = T.load_run(run, 'ema', device)
    if isinstance(b, T.TrainConfig): cfg, step = b, (T.checkpoint_step(run) if hasattr(T, 'checkpoint_step') else None)
    else: cfg, step = a, int(b)
    return model, cfg, process_of(cfg), step

def cpu_seconds() -> float:
    import resource
    r = [resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(x.ru_utime + x.ru_stime for x in r)

def need_mnist(ctx, train: bool = True):
    "The MNIST split as (x, y) tensors, or `Skip` naming the data root when it is not there."
    from dale_nbdev.data import load_dataset, DatasetNotFoundError
    try: ds = load_dataset('mnist', root=ctx.data, train=train)
    except DatasetNotFoundError as e: raise Skip(f'MNIST not found under {ctx.data}: {str(e)[:300]}')
    return ds.tensors[0], ds.tensors[1]

@contextlib.contextmanager
def compile_backend(backend):
    "Within the block `torch.compile` uses `backend` ('inductor': unchanged; 'eager': graph capture only, for --tiny)."
    import torch
    if backend in (None, 'inductor'):
        yield; return
    orig = torch.compile
    torch.compile = functools.partial(orig, backend=backend)
    try: yield
    finally: torch.compile = orig

def datasheet_peak(name: str):
    "(dense bf16 FLOP/s, matched key) of the vendor's datasheet for a device name, or (None, None)."
    for key, v in DATASHEET_BF16:
        if key.lower() in (name or '').lower(): return v, key
    return None, None

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

# ---------------------------------------------------------------------------------------------------- stage: env
def inception_weights() -> dict:
    "Where the FID InceptionV3 weights could be (env DALE_INCEPTION_WEIGHTS, torch hub's checkpoints), which exist."
    import torch
    cands = []
    if os.environ.get('DALE_INCEPTION_WEIGHTS'): cands.append(os.environ['DALE_INCEPTION_WEIGHTS'])
    cands.append(str(Path(torch.hub.get_dir()) / 'checkpoints' / INCEPTION_FILE))
    found = next((c for c in cands if Path(c).is_file()), None)
    try:
        import torch_fidelity
        tf = bool(torch_fidelity.__name__)                      # torchmetrics' InceptionV3 needs it
    except ImportError: tf = False
    return dict(candidates=cands, found=found, size_mb=Path(found).stat().st_size / 2 ** 20 if found else None,
                torch_fidelity=tf, usable=bool(found and tf))

def gpu_props(device) -> dict:
    import torch
    p = torch.cuda.get_device_properties(device)
    return dict(gpu_name=p.name, gpu_mem_gib=p.total_memory / 2 ** 30, sm_count=p.multi_processor_count,
                l2_mib=getattr(p, 'L2_cache_size', 0) / 2 ** 20, capability=f'{p.major}.{p.minor}',
                cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(), device_count=torch.cuda.device_count())

def repo_info() -> dict:
    "Which package this run imports and, where git answers, the repository's commit and whether it has local changes."
    import dale_nbdev
    d = dict(package=str(Path(dale_nbdev.__file__).parent), version=getattr(dale_nbdev, '__version__', None))
    with contextlib.suppress(Exception):
        git = lambda *c: subprocess.run(['git', *c], cwd=str(ROOT), capture_output=True, text=True, timeout=5).stdout
        d.update(commit=git('rev-parse', 'HEAD').strip() or None,
                 dirty=bool(git('status', '--porcelain', '-uno').strip()))
    return d

def stage_env(rec, ctx):
    import torch
    from dale_nbdev import bench
    rec.put('repo', repo_info())
    info = bench.device_info(ctx.device)
    info.update(cuda_available=torch.cuda.is_available(), tiny=ctx.a.tiny)
    if ctx.cuda: info.update(gpu_props(ctx.device))
    rec.put('info', info)
    rec.put('inception', inception_weights())
    peaks = bench.device_peaks(ctx.device, n=ctx.S['peak_n'])
    ds, key = datasheet_peak(info.get('gpu_name', '')) if ctx.cuda else (None, None)
    peaks.update(datasheet_bf16=ds, datasheet_key=key)
    rec.put('peaks', peaks)
    try:
        x, _ = need_mnist(ctx, train=False)
        rec.put('data', dict(root=ctx.data, mnist_test=len(x), ok=True))
    except Skip as e: rec.put('data', dict(root=ctx.data, ok=False, reason=str(e)))

# -------------------------------------------------------------------------------------------------- stage: paths
def ref_peaks(ctx) -> dict:
    "The env stage's peaks, or measured here when that stage has none."
    p = (read_json(ctx.work / 'env.json') or {}).get('result', {}).get('peaks')
    if p: return p
    from dale_nbdev import bench
    p = bench.device_peaks(ctx.device, n=ctx.S['peak_n'])
    p.update(datasheet_bf16=None, datasheet_key=None)
    return p

def live_steps(model, batches, gbm, steps: int):
    """`steps` plain fp32 AdamW steps (lr 1e-3) over `batches`: a network whose output layer starts at zero (DDPM++)
    reports the same loss whatever its body computes, so the loss check of a fast path against fp32 is only
    meaningful from weights that have moved."""
    import torch
    from dale_nbdev.losses import mdsm_loss
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for i in range(steps):
        x0, t, z = batches[i % len(batches)]
        opt.zero_grad(set_to_none=True); mdsm_loss(model, x0, gbm, t=t, z=z).backward(); opt.step()

def model_setup(name, ctx):
    """(initial state dict, batches, per-model record with params, FLOPs and the batch loss's Monte Carlo error). The
    network is built once, on the device; its initial weights are those after `live_steps` fp32 steps, kept in the
    work folder so that every stage starts every path from the same weights."""
    import torch
    from dale_nbdev import bench
    from dale_nbdev.gbm import GBM
    from dale_nbdev.models import get_model, count_parameters
    S, spec, kw, gbm = ctx.S, bench.BENCH_MODELS[name], ctx.model_kw(name), GBM()
    batches = bench.make_batches(min(S['warmup'] + S['iters'], 8), S['batch'], spec['shape'], ctx.device, gbm)
    torch.manual_seed(0)
    with torch.device(ctx.device): model = get_model(name, **kw)
    cache = ctx.work / f'state_{name}.pt'
    if cache.is_file(): model.load_state_dict(torch.load(cache, map_location=ctx.device, weights_only=True))
    else:
        with api('precision_flags')(False, ctx.device): live_steps(model, batches, gbm, S['live_steps'])
        torch.save(model.state_dict(), cache)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    mr = dict(dataset=spec['dataset'], shape=spec['shape'], model_kw=kw, params=count_parameters(model),
              modules=sum(1 for m in model.modules() if next(m.children(), None) is None), live_steps=S['live_steps'],
              flops=bench.train_step_flops(model, batches[0], gbm), loss0=bench.batch_loss_se(model, batches[0], gbm),
              train={}, skipped={}, errors={})
    return state, batches, mr

def skip_reason(path, ctx):
    """Why `path` is skipped on this device (None: it runs). A path whose every switch this device lacks (TF32 on
    the CPU; fused AdamW where torch has none) would only repeat fp32 eager; others run without those switches."""
    sp, notes = speed_configs()[path].applicable(ctx.device)
    if not ctx.cuda and speed_configs()[path].tf32: notes = [f'tf32: CUDA only ({CUDA_ONLY["tf32"]})'] + \
        [n for n in notes if not n.startswith('tf32')]
    if notes and not (sp.amp or sp.channels_last or sp.compile or sp.fused or sp.tf32): return '; '.join(notes)
    return None

def run_path(name, path, state, batches, mr, peaks, ctx):
    "One configuration's throughput, MFU and losses into `mr['train'][path]` (errors into `mr['errors']`)."
    from dale_nbdev import bench
    from dale_nbdev.gbm import GBM
    why = skip_reason(path, ctx)
    if why: mr['skipped'][path] = why; return
    S = ctx.S
    try:
        import torch
        with compile_backend(S['compile_backend']), torch.device(ctx.device):      # the network is built on the device
            r = bench.bench_train(name, speed_configs()[path], state, batches, ctx.device, ctx.model_kw(name),
                                  S['warmup'], S['iters'], GBM())
    except Exception: mr['errors'][path] = tb(); return
    f = mr['flops']['total'] * r['steps_per_s']
    ref = peaks[peaks['ref']]['flops_per_s']
    own = 'bf16' if r['config']['amp'] else ('tf32' if r['config']['tf32'] and 'tf32' in peaks else 'fp32')
    r.update(tflops=f / 1e12, mfu=f / ref, mfu_ref=peaks['ref'], utilisation_own=f / peaks[own]['flops_per_s'],
             mfu_datasheet=f / peaks['datasheet_bf16'] if peaks.get('datasheet_bf16') else None,
             losses_finite=all(math.isfinite(v) for v in r['losses']))
    if S['compile_backend'] != 'inductor' and r['config']['compile']: r['compile_backend'] = S['compile_backend']
    mr['train'][path] = r

def summarise(mr):
    "Speed-ups, loss checks against fp32 eager and the recommendation (`bench.summarise`), when fp32 eager ran."
    from dale_nbdev import bench
    if 'fp32_eager' not in mr['train']: mr['recommended'] = None; return mr
    bench.summarise(mr)
    mr['checks_ok'] = all(r.get('loss_check', {}).get('ok', True) and r['losses_finite'] for r in mr['train'].values())
    return mr

def stage_paths(rec, ctx):
    "Every eager path on every network, path by path (a stage cut short loses the last paths, not the last networks)."
    peaks, setups = ref_peaks(ctx), {}
    for name in MODELS:
        try: setups[name] = model_setup(name, ctx)
        except Exception: rec.put(name, dict(error=tb()))
    for path in ctx.S['paths']:
        for name, (state, batches, mr) in setups.items():
            if ctx.left() < 2: mr['skipped'][path] = 'time guard: stage budget spent'; continue
            run_path(name, path, state, batches, mr, peaks, ctx)
            rec.put(name, mr)
    for name, (_, _, mr) in setups.items(): rec.put(name, summarise(mr))

# ---------------------------------------------------------------------------------------------------- stage: ddp
def grads(model):
    import torch
    return torch.cat([p.grad.detach().flatten().float() for p in model.parameters() if p.grad is not None])

def ddp_step(model, batch, gbm):
    from dale_nbdev.losses import mdsm_loss
    model.zero_grad(set_to_none=True)
    x0, t, z = batch
    loss = mdsm_loss(model, x0, gbm, t=t, z=z); loss.backward()
    return float(loss.detach())

def stage_ddp(rec, ctx):
    import copy, datetime as dt
    import torch, torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP
    from dale_nbdev import bench
    from dale_nbdev.gbm import GBM
    from dale_nbdev.models import get_model
    S, dev = ctx.S, ctx.device
    backend = 'nccl' if ctx.cuda else 'gloo'
    if not ctx.cuda: rec.put('nccl', dict(status='skipped', reason=f'CUDA only: {CUDA_ONLY["nccl"]}'))
    os.environ.setdefault('NCCL_SOCKET_IFNAME', 'lo')
    port = free_port(); t0 = time.perf_counter()
    dist.init_process_group(backend, init_method=f'tcp://127.0.0.1:{port}', rank=0, world_size=1,
                            timeout=dt.timedelta(seconds=max(10, int(ctx.left() - 5))))
    try:
        rec.put('init', dict(backend=backend, port=port, seconds=time.perf_counter() - t0, world_size=1))
        name, gbm = S['ddp_model'], GBM()
        torch.manual_seed(0); ref = get_model(name, **S['ddp_kw']).to(dev).train()
        net = DDP(copy.deepcopy(ref), device_ids=[dev.index or 0] if ctx.cuda else None)
        batch = bench.make_batches(1, S['ddp_batch'], bench.BENCH_MODELS[name]['shape'], dev, gbm)[0]
        with api('precision_flags')(False, dev):                  # strict fp32: only reductions may differ
            l_ref = ddp_step(ref, batch, gbm); g_ref = grads(ref)
            l_ddp = ddp_step(net, batch, gbm); g_ddp = grads(net.module)
            bench.synchronize(dev); t1 = time.perf_counter()
            for _ in range(S['ddp_iters']): ddp_step(net, batch, gbm)
            bench.synchronize(dev); step_s = (time.perf_counter() - t1) / S['ddp_iters']
        tol = bench.loss_tolerance(speed_configs()['fp32_eager'])
        g_rel = float((g_ddp - g_ref).norm() / g_ref.norm().clamp_min(1e-30))
        chk = bench.compare_losses([l_ref], [l_ddp], tol)
        rec.put('step', dict(model=name, model_kw=S['ddp_kw'], batch=S['ddp_batch'], loss=l_ref, loss_ddp=l_ddp,
                             loss_check=chk, grad_rel_diff=g_rel, grad_rtol=tol, ok=bool(chk['ok'] and g_rel <= tol),
                             losses_finite=math.isfinite(l_ref) and math.isfinite(l_ddp), step_s=step_s))
    finally: dist.destroy_process_group()

# ------------------------------------------------------------------------------------------------ stage: compile
def stage_compile(rec, ctx):
    S = ctx.S
    prior = (read_json(ctx.work / 'paths.json') or {}).get('result', {})
    rec.put('backend', S['compile_backend'])
    if S['compile_backend'] != 'inductor':
        rec.put('inductor', dict(status='skipped', reason='--tiny: Inductor compiles for minutes on a CPU; graph '
                                 'capture ran with the eager backend'))
    peaks, setups, measured = ref_peaks(ctx), {}, {}
    def estimate(name):
        "Seconds of a cold compile of `name`: the slowest measured compile, scaled by the ratio of leaf modules."
        mods = setups[name][2]['modules']
        return max((w * mods / m for m, w in measured.values()), default=0.0)
    for path in S['compile_paths']:
        for name in sorted(S['compile_models'], key=lambda n: prior.get(n, {}).get('modules', math.inf)):
            # smallest graph first (leaf modules counted by the paths stage): its compile time sizes the others'
            if ctx.left() < S['compile_min_left']:
                rec.put(f'{name}.{path}', dict(not_started=f'time guard: {ctx.left():.0f} s left')); continue
            if name not in setups:
                try: setups[name] = model_setup(name, ctx)
                except Exception: rec.put(name, dict(error=tb())); continue
                mr = setups[name][2]; base = prior.get(name, {}).get('train', {})
                if 'fp32_eager' in base: mr['train'] = {k: v for k, v in base.items()}
                else: run_path(name, 'fp32_eager', *setups[name][:2], mr, peaks, ctx)
                mr['skipped'].update(prior.get(name, {}).get('skipped', {}))
            state, batches, mr = setups[name]
            est = estimate(name)
            if est > ctx.left() - S['compile_min_left']:
                rec.put(f'{name}.{path}', dict(not_started=f'a compile estimated at {est:.0f} s (measured compiles '
                                               f'{measured}, scaled by leaf modules) does not fit the '
                                               f'{ctx.left():.0f} s left')); continue
            run_path(name, path, state, batches, mr, peaks, ctx)
            r = mr['train'].get(path)
            if r and r['config']['compile']: measured[name] = (mr['modules'], r['warmup_s'])
            rec.put(name, summarise(mr))

# ---------------------------------------------------------------------------------------------- stage: training
def guard(deadline, info_box, losses, min_steps: int = 2):
    """Training callback: keep the losses and the latest state; raise `TimeUp` once `deadline` (epoch s) has passed
    and at least `min_steps` steps ran (the stage's hard limit still applies)."""
    def cb(info):
        losses.append(info['loss']); info_box['info'] = info; info_box.setdefault('t', []).append(time.time())
        if time.time() >= deadline and len(losses) >= min_steps: raise TimeUp()
    return cb

def train_deadline(ctx, seconds, reserve):
    "When training must stop: the stage's deadline less `reserve`, or `seconds` from now when the size sets it."
    end = ctx.deadline - reserve
    return end if seconds is None else min(end, time.time() + seconds)

def loss_summary(losses, k: int = 10) -> dict:
    "First and last losses, the mean of the last 10 %, and k evenly spaced window means."
    n = len(losses)
    if not n: return dict(n=0)
    w = max(1, n // k); tail = losses[-max(1, n // 10):]
    return dict(n=n, first=losses[0], last=losses[-1], tail_mean=sum(tail) / len(tail),
                curve=[sum(losses[i:i + w]) / len(losses[i:i + w]) for i in range(0, n, w)],
                finite=all(math.isfinite(v) for v in losses))

def measured_rate(times, skip: int) -> float:
    "Steps per second over the callback times after the first `skip` steps (warm-up excluded)."
    if len(times) < skip + 2: return (len(times) - 1) / max(times[-1] - times[0], 1e-9) if len(times) > 1 else 0.0
    return (len(times) - 1 - skip) / max(times[-1] - times[skip], 1e-9)

def save_stopped(cfg, info, path):
    "A checkpoint in the engine's format (step, model, ema, config) of a run the time guard stopped."
    api('atomic_save')(dict(step=info['step'], model=info['model'].state_dict(), ema=info['ema'].state_dict(),
                     config=cfg.to_dict()), Path(path) / 'checkpoint.pt')

def stage_train_cpu(rec, ctx):
    from dale_nbdev.train import make_config, train, load_training_data
    cfg = make_config('cpu', data_root=ctx.data, device=str(ctx.device), **ctx.S['cpu_over'])
    need_mnist(ctx)
    data = load_training_data(cfg)
    preset_steps = cfg.steps
    box, losses = {}, []
    cal = cfg.replace(steps=10 ** 8, ckpt_every=10 ** 9, log_every=10 ** 9, sample_every=0)
    t0, S = time.time(), ctx.S
    try: train(cal, ctx.work / 'train_cpu_calib', data=data, progress=False,
               callback=guard(t0 + S['calib_s'], box, losses, 3))
    except TimeUp: pass
    rate = measured_rate(box.get('t', [t0]), skip=min(20, len(losses) // 4))
    rec.put('calibration', dict(seconds=time.time() - t0, steps=len(losses), steps_per_s=rate))
    reserve = 3 if ctx.cuda else 1                               # saving the checkpoint, writing the record
    end = train_deadline(ctx, S['train_s'], reserve)
    steps = max(S['min_steps'], int(rate * max(end - time.time(), 0) * 0.95))
    cfg = cfg.replace(steps=steps, ckpt_every=steps, log_every=max(1, steps // 20), sample_every=0)
    box, losses, run = {}, [], ctx.work / 'train_cpu'
    t0 = time.time(); stopped = 'schedule complete'
    try: train(cfg, run, data=data, progress=False, callback=guard(end, box, losses, S['min_steps']))
    except TimeUp:
        stopped = 'time guard'; save_stopped(cfg, box['info'], run)
    wall = time.time() - t0
    rec.put('train', dict(config=cfg.to_dict(), preset='cpu', preset_steps=preset_steps, steps_planned=steps,
                          steps=len(losses), stopped_by=stopped, seconds=wall, steps_per_s=len(losses) / wall,
                          steps_per_s_steady=measured_rate(box.get('t', [t0]), skip=min(20, len(losses) // 4)),
                          images_per_s=len(losses) * cfg.batch_size / wall, loss=loss_summary(losses),
                          run_dir=str(run)))

def fastest_path(ctx, name='ncsn_deeper'):
    "(path name, its record, where from): the compile stage's recommendation for `name`, else the paths stage's."
    for stage in ('compile', 'paths'):
        mr = (read_json(ctx.work / f'{stage}.json') or {}).get('result', {}).get(name, {})
        p = mr.get('recommended')
        if p: return p, mr['train'][p], mr, stage
    return None, None, None, None

def speed_for_training(ctx, budget):
    "The SpeedConfig to train NCSN-Deeper with: the fastest passing path, unless its compile warm-up eats the budget."
    p, r, mr, where = fastest_path(ctx)
    note = f'fastest passing path of the {where} stage' if p else 'no measured path: the trainer default'
    if p and r['config']['compile'] and r['warmup_s'] > 0.4 * budget:
        ok = [q for q, v in mr['train'].items() if not v['config']['compile'] and not q.endswith('_repeat')
              and (q == 'fp32_eager' or v.get('loss_check', {}).get('ok'))]
        q = max(ok, key=lambda q: mr['train'][q]['steps_per_s']) if ok else None
        note = f'{p} compiles for {r["warmup_s"]:.0f} s (> 40 % of the budget): fastest passing eager path {q}'
        p = q
    sp = speed_configs()[p] if p in speed_configs() else speed_configs()['trainer_default']
    return sp, note

def apply_speed(cfg, sp):
    "TrainConfig with the switches of `sp` that it has fields for; the others are listed (TF32 is set around train)."
    if hasattr(sp, 'train_config'): return sp.train_config(cfg), []
    kw, missing = {}, []
    have = set(cfg.to_dict())
    for f, v in (('amp', sp.amp), ('channels_last', sp.channels_last), ('compile', sp.compile),
                 ('fused', sp.fused), ('tf32', sp.tf32), ('compile_mode', sp.compile_mode)):
        if f in have: kw[f] = v
        elif f == 'fused' and 'fused_adamw' in have: kw['fused_adamw'] = v
        elif v not in (False, None): missing.append(f)
    return cfg.replace(**kw), missing

def stage_train_paper(rec, ctx):
    from dale_nbdev.train import make_config, train, load_training_data
    cfg = make_config('mnist', data_root=ctx.data, device=str(ctx.device), ckpt_every=10 ** 9, snapshot_every=0,
                      sample_every=0, log_every=50, **ctx.S['paper_over'])
    need_mnist(ctx)
    sp, note = speed_for_training(ctx, ctx.left())
    cfg, missing = apply_speed(cfg, sp)
    rec.put('speed', dict(path=sp.name, config=dataclasses.asdict(sp), why=note, not_in_trainconfig=missing))
    data = load_training_data(cfg)
    box, losses = {}, []
    t0 = time.time(); stopped = 'schedule complete'
    try:
        with api('precision_flags')(None if 'tf32' in cfg.to_dict() else sp.tf32, ctx.device), \
                compile_backend(ctx.S['compile_backend']):
            train(cfg, ctx.work / 'train_paper', data=data, progress=False,
                  callback=guard(train_deadline(ctx, ctx.S['paper_s'], 1), box, losses, ctx.S['min_steps']))
    except TimeUp: stopped = 'time guard'
    wall, ts = time.time() - t0, box.get('t', [t0])
    skip = min(20, len(losses) // 4)
    rec.put('train', dict(config=cfg.to_dict(), preset='mnist', steps=len(losses), stopped_by=stopped, seconds=wall,
                          first_step_s=ts[0] - t0 if len(ts) else None, steps_per_s=len(losses) / wall,
                          steps_per_s_steady=measured_rate(ts, skip), loss=loss_summary(losses),
                          images_per_s_steady=measured_rate(ts, skip) * cfg.batch_size))

# ------------------------------------------------------------------------------------------------- stage: sample
def wait_for(path, ctx, reserve):
    "Wait (polling) until the background stage writing `path` is done, while more than `reserve` s are left."
    while ctx.left() > reserve:
        d = read_json(path)
        if d and d.get('status') != 'running': return d
        time.sleep(0.5)
    return read_json(path)

def get_classifier(ctx):
    return api('get_domain_classifier')('mnist', cache=ctx.cache, data_root=ctx.data, **ctx.S['clf_kw'])

def domain_metrics(u8, real, clf, ctx):
    n = min(len(u8), len(real))
    return api('evaluate_samples')(u8, 'mnist', metric='domain', real_u8=real, classifier=clf, device=ctx.device,
                            kid_subset_size=min(1000, n))

def inception_metrics(fakes: dict, train_u8, real, ctx, weights):
    "Inception FID/KID of each sample set and of the floor (train subset), against the real test images."
    evaluate_samples = api('evaluate_samples')
    n = ctx.S['n_inception']
    real = real if n is None else real[:n]
    sets = dict(fakes, floor=train_u8)
    out = {}
    for k in ctx.S['inception_sets']:
        u8 = sets[k]
        u8 = u8 if n is None else u8[:n]
        out[k] = evaluate_samples(u8, 'mnist', metric='inception', real_u8=real, inception_weights=weights,
                                  inception_feature=ctx.S['inception_feature'], device=ctx.device,
                                  kid_subset_size=min(1000, len(u8), len(real)))
    return out

def sample_ode(model, process, X, Y, n, ctx):
    "n samples by Heun on the log-space ODE, Karras grid of `ode_steps` levels, from class-average starts."
    import torch
    sample_ode_heun, get_times_karras, ode_nfe = api('sample_ode_heun'), api('get_times_karras'), api('ode_nfe')
    means = api('class_averages')(X, Y).to(ctx.device)          # starts: class means pushed to t = 1 (Sec. 6.2)
    times = get_times_karras(ctx.S['ode_steps'], process)
    score_fn, xs, B = api('make_score_fn')(model, ctx.device), [], ctx.S['sample_batch']
    for b, off in enumerate(range(0, n, B)):
        g = torch.Generator(device=ctx.device).manual_seed(1000 + b)
        x0 = api('class_average_init')(torch.roll(means, -(off % len(means)), 0), min(B, n - off), process, generator=g)
        xs.append(sample_ode_heun(score_fn, x0, process, times, disable=True).float().cpu())
    return torch.cat(xs), dict(steps=ctx.S['ode_steps'], grid='karras', nfe=ode_nfe(times), init='class_average')

def timed(fn, ctx):
    from dale_nbdev import bench
    bench.synchronize(ctx.device); t0 = time.perf_counter(); r = fn(); bench.synchronize(ctx.device)
    return r, time.perf_counter() - t0

def adls_samples(model, process, X, Y, n, ctx):
    "n samples by ADLS at the paper's MNIST settings (Table 3) from class-average starts (`generate`)."
    import inspect
    generate, levels = api('generate'), ctx.S['adls_levels']
    pk = 'process' if 'process' in inspect.signature(generate).parameters else 'gbm'
    times = None
    if levels:                                                   # --tiny: every k-th level of the grid t_k = k/N
        full = api('get_times')(process.N)
        times = full[::math.ceil(len(full) / levels)]
    return generate(model, 'mnist', n=n, sampler='adls', init='class_average', train_x=X, train_y=Y, times=times,
                    batch_size=ctx.S['sample_batch'], seed=0, device=ctx.device, progress=False, **{pk: process})

def domain_reference(rec, ctx, X):
    "(real test images, train subset, classifier, record with the floor): the background prep stage's, when ready."
    real_uint8, to_uint8 = api('real_uint8'), api('to_uint8')
    prep = wait_for(ctx.work / 'prep.json', ctx, reserve=10 if ctx.cuda else 5) or {}
    rec.put('prep_status', prep.get('status', 'missing'))
    real = real_uint8('mnist', 'test', ctx.S['n_real'], ctx.data)
    train_u8 = to_uint8(X[:ctx.S['n_samples']])[0]
    clf, info = get_classifier(ctx)
    floor = prep.get('result', {}).get('floor_domain') or domain_metrics(train_u8, real, clf, ctx)
    return real, train_u8, clf, dict(floor=floor, classifier=info)

def stage_sample(rec, ctx):
    """Each sampler in turn, cheapest first (the ODE, then ADLS): samples, grid, domain FID/KID, written as they come;
    then Inception FID/KID of every set when the weights exist."""
    save_grid, to_uint8, sampler_settings = api('save_grid'), api('to_uint8'), api('sampler_settings')
    X, Y = need_mnist(ctx)
    run = ctx.work / 'train_cpu'
    if not (run / 'checkpoint.pt').exists(): raise Skip('no model: the train_cpu stage left no checkpoint')
    model, cfg, process, step = load_model(run, ctx.device)
    n = ctx.S['n_samples']
    rec.put('model', dict(run='train_cpu', step=step, model=cfg.model, precond=getattr(cfg, 'precond', None)))
    adls_meta = dict(settings=sampler_settings('mnist', 'adls', 'class_average'), init='class_average',
                     levels=ctx.S['adls_levels'] or 'all (t_k = k/N, k = N-1..1)')
    draws = (('ode_heun', lambda: sample_ode(model, process, X, Y, n, ctx)),
             ('adls', lambda: (adls_samples(model, process, X, Y, n, ctx), adls_meta)))
    fakes, ref = {}, None
    for name, draw in draws:
        (x, meta), s = timed(draw, ctx)
        fakes[name], rep = to_uint8(x)
        save_grid(fakes[name][:100], ctx.out / f'samples_{name}.png')
        rec.put(name, dict(meta, n=n, seconds=s, images_per_s=n / s, range=rep, grid=f'samples_{name}.png'))
        if ref is None: ref = domain_reference(rec, ctx, X)
        real, train_u8, clf, dom = ref
        dom[name] = domain_metrics(fakes[name], real, clf, ctx)
        rec.put('domain', dom)
    inception(rec, ctx, fakes, train_u8, real)

def inception(rec, ctx, fakes, train_u8, real):
    "Inception FID/KID of the sample sets and the floor, when the FID weights and torch-fidelity are there."
    inc = (read_json(ctx.work / 'env.json') or {}).get('result', {}).get('inception', {})
    weights = inc.get('found')
    if ctx.a.tiny and inc.get('torch_fidelity') and not weights:
        weights = str(api('make_random_inception_weights')(ctx.work / 'inception_random.pth'))
        rec.put('inception_note', '--tiny: randomly initialised InceptionV3 (code path only; numbers not comparable)')
    if not (weights and inc.get('torch_fidelity')):
        rec.put('inception', dict(status='skipped', reason='no cached FID InceptionV3 weights or no torch_fidelity'
                                  f' (looked in {inc.get("candidates")})'))
        return
    rec.put('inception', inception_metrics(fakes, train_u8, real, ctx, weights))

def stage_prep(rec, ctx):
    "CPU only, in the background: MNIST into the cache, the domain classifier, the floor's domain FID/KID."
    import torch
    real_uint8, to_uint8 = api('real_uint8'), api('to_uint8')
    torch.set_num_threads(ctx.S['prep_threads'])
    X, _ = need_mnist(ctx)
    t0 = time.time(); clf, info = get_classifier(ctx)
    rec.put('classifier', dict(info, seconds=time.time() - t0))
    real = real_uint8('mnist', 'test', ctx.S['n_real'], ctx.data)
    train_u8 = to_uint8(X[:ctx.S['n_samples']])[0]
    rec.put('floor_domain', api('evaluate_samples')(train_u8, 'mnist', metric='domain', real_u8=real, classifier=clf,
                                             kid_subset_size=min(1000, len(train_u8), len(real))))

STAGE_FNS = dict(env=stage_env, paths=stage_paths, ddp=stage_ddp, compile=stage_compile, train_cpu=stage_train_cpu,
                 train_paper=stage_train_paper, sample=stage_sample, prep=stage_prep)

def run_stage(a):
    "Child process: run one stage, recording status ('ok', 'skipped', 'error') and results to work/<stage>.json."
    work = Path(a.work); rec = Recorder(work / f'{a.stage}.json')
    ctx = Ctx(a, work, a.deadline)
    if ctx.cuda:
        import torch
        torch.backends.cudnn.benchmark = True                  # the fastest convolution algorithm for each shape
    try:
        STAGE_FNS[a.stage](rec, ctx); rec.data['status'] = 'ok'
    except Skip as e: rec.data.update(status='skipped', reason=str(e))
    except BaseException as e:
        rec.data.update(status='error', reason=f'{type(e).__name__}: {str(e)[:500]}', traceback=tb())
    rec.data['cpu_s'] = round(cpu_seconds(), 2)
    rec.data['dev_only_imports'] = sorted(m for m in ('fastcore', 'nbdev') if m in sys.modules)  # not on GPU images
    rec.flush()
    return 0

# -------------------------------------------------------------------------------------------------------- parent
def child_cmd(a, stage, deadline, work):
    cmd = [sys.executable, '-u', str(Path(__file__).resolve()), '--stage', stage, '--deadline', f'{deadline:.3f}',
           '--work', str(work), '--out', str(a.out), '--data', str(a.data)]
    if a.tiny: cmd.append('--tiny')
    if a.device: cmd += ['--device', a.device]
    return cmd

def start_child(a, stage, budget, work, env=None):
    deadline = time.time() + budget
    log = open(work / f'{stage}.log', 'w')
    p = subprocess.Popen(child_cmd(a, stage, deadline, work), stdout=log, stderr=subprocess.STDOUT,
                         start_new_session=True, env=env, cwd=str(ROOT))
    return dict(proc=p, log=log, t0=time.time(), budget=budget, stage=stage)

def finish_child(ch, work, hard_limit):
    "Wait for a stage's process until `hard_limit` s after its start, kill its process group after; its record."
    p, timed_out = ch['proc'], False
    try: p.wait(timeout=max(0.1, ch['t0'] + hard_limit - time.time()))
    except subprocess.TimeoutExpired:
        timed_out = True
        with contextlib.suppress(ProcessLookupError): os.killpg(p.pid, signal.SIGKILL)
        p.wait()
    ch['log'].close()
    d = read_json(work / f'{ch["stage"]}.json') or dict(result={})
    st = dict(status=d.get('status', 'error'), seconds=round(time.time() - ch['t0'], 2), budget_s=ch['budget'],
              cpu_s=d.get('cpu_s'), dev_only_imports=d.get('dev_only_imports'), result=d.get('result', {}))
    for k in ('reason', 'traceback'):
        if k in d: st[k] = d[k]
    if timed_out:
        st.update(status='timeout',
                  reason=f'cut short by the time guard after {hard_limit:.0f} s (partial results kept)')
    elif p.returncode != 0 and st['status'] in ('running', 'ok'):
        st.update(status='error', reason=f'process exited with code {p.returncode}')
    if st['status'] in ('error', 'timeout'):
        st['log_tail'] = (work / f'{ch["stage"]}.log').read_text(errors='replace')[-3000:]
    return st

def parse_args(argv=None):
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
    p.add_argument('--stage', default=None, help=argparse.SUPPRESS)          # internal: run one stage (child)
    p.add_argument('--deadline', type=float, default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    a.data = str(Path(a.data or os.environ.get('DALE_DATA') or 'data').expanduser().absolute())
    a.out = str(Path(a.out).expanduser().absolute())
    if a.work: a.work = str(Path(a.work).expanduser().absolute())
    return a

def main(argv=None):
    a = parse_args(argv)
    if a.stage: return run_stage(a)
    S = SIZES['tiny' if a.tiny else 'full']
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    work = Path(a.work or tempfile.mkdtemp(prefix='gpu_check_')); work.mkdir(parents=True, exist_ok=True)
    total = a.budget or S['total']; scale = total / S['total']; t0 = time.time()
    rep = dict(check='dale_nbdev GPU check', version=1, size='tiny' if a.tiny else 'full',
               command=' '.join(['python', 'benchmarks/gpu_check.py', *(sys.argv[1:] if argv is None else argv)]),
               started_utc=now_utc(), budget_s=total, data_root=a.data, stages={})
    path = out / 'gpu_check.json'
    atomic_json(path, rep)
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='')                # the prep stage stays off the GPU
    prep = start_child(a, 'prep', total, work, env=env) if 'sample' in a.stages else None
    for stage in STAGES:
        if stage not in a.stages:
            rep['stages'][stage] = dict(status='skipped', reason='not selected (--stages)'); continue
        left = t0 + total - time.time()
        budget = min(S['budgets'][stage] * scale, left)
        if budget < 3:
            rep['stages'][stage] = dict(status='skipped', reason=f'overall time guard: {left:.0f} s left'); continue
        print(f'[gpu_check {time.time() - t0:6.1f} s] {stage} (budget {budget:.0f} s)', flush=True)
        rep['stages'][stage] = finish_child(start_child(a, stage, budget, work), work, budget + S['grace'])
        print(f'[gpu_check {time.time() - t0:6.1f} s] {stage}: {rep["stages"][stage]["status"]}', flush=True)
        atomic_json(path, rep)
    if prep is not None:
        rep['stages']['prep'] = finish_child(prep, work, max(time.time() - prep['t0'], 1.0))
    rep.update(finished_utc=now_utc(), wall_s=round(time.time() - t0, 2))
    try:
        rep['summary'] = summarise_report(rep); md = report_markdown(rep)
        (out / 'gpu_check.md').write_text(md + '\n')
    except Exception: rep['summary_error'] = tb(); md = rep['summary_error']
    rep['files'] = sorted(f.name for f in out.iterdir() if f.is_file() and not f.name.startswith('.'))
    atomic_json(path, rep)
    print(md, flush=True)
    if not a.keep_work and a.work is None:
        import shutil
        shutil.rmtree(work, ignore_errors=True)
    return rep

# ------------------------------------------------------------------------------------------------------- summary
def _r(rep, stage): return rep['stages'].get(stage, {}).get('result', {})

def model_results(rep) -> dict:
    "Per network: the compile stage's merged record when it has one, else the paths stage's."
    out = {}
    for m in MODELS:
        for st in ('compile', 'paths'):
            mr = _r(rep, st).get(m)
            if isinstance(mr, dict) and 'train' in mr: out[m] = mr; break
    return out

def summarise_report(rep) -> dict:
    "The headline numbers of a run (plain JSON, no torch)."
    env = _r(rep, 'env'); info = env.get('info', {}); pk = env.get('peaks', {})
    s = dict(status={k: v.get('status') for k, v in rep['stages'].items()},
             device=info.get('gpu_name') or info.get('name'), torch=info.get('torch'), cuda=info.get('cuda'),
             peak_ref=pk.get('ref'), peak_tflops=(pk.get(pk.get('ref'), {}) or {}).get('flops_per_s', 0) / 1e12,
             datasheet_bf16_tflops=(pk.get('datasheet_bf16') or 0) / 1e12 or None,
             inception_weights=env.get('inception', {}).get('found'), models={})
    for m, mr in model_results(rep).items():
        b, rec = mr['train'].get('fp32_eager', {}), mr.get('recommended')
        r = mr['train'].get(rec, {})
        s['models'][m] = dict(fp32_steps_per_s=b.get('steps_per_s'), recommended=rec, speedup=r.get('speedup'),
                              steps_per_s=r.get('steps_per_s'), images_per_s=r.get('images_per_s'), mfu=r.get('mfu'),
                              mfu_datasheet=r.get('mfu_datasheet'), checks_ok=mr.get('checks_ok'),
                              goal_speedup_3x=bool(r.get('speedup') and r['speedup'] >= 3),
                              goal_mfu_40=bool(r.get('mfu') and r['mfu'] >= 0.40))
    s['ddp_ok'] = _r(rep, 'ddp').get('step', {}).get('ok')
    for k in ('train_cpu', 'train_paper'):
        t = _r(rep, k).get('train', {})
        if t: s[k] = dict(steps=t['steps'], steps_per_s=t.get('steps_per_s_steady'), loss=t['loss'].get('tail_mean'),
                          stopped_by=t['stopped_by'])
    if 'speed' in _r(rep, 'train_paper') and 'train_paper' in s:
        s['train_paper']['path'] = _r(rep, 'train_paper')['speed']['path']
    dom = _r(rep, 'sample').get('domain', {})
    s['domain_fid'] = {k: v.get('fid') for k, v in dom.items() if isinstance(v, dict) and 'fid' in v}
    inc = _r(rep, 'sample').get('inception', {})
    s['inception_fid'] = {k: v.get('fid') for k, v in inc.items() if isinstance(v, dict) and 'fid' in v} or None
    return s

def _f(v, fmt='{:.3g}'): return '—' if v is None else fmt.format(v)

def report_markdown(rep) -> str:
    "Markdown tables of a run: stages, throughput per network and path, training, sampling and quality."
    s = rep['summary']
    L = [f"**GPU check** ({rep['size']}), {rep['started_utc']}: {s['device']}, torch {s['torch']}, CUDA {s['cuda']}; "
         f"measured {s['peak_ref']} matmul peak {_f(s['peak_tflops'])} TFLOP/s"
         + (f", datasheet bf16 {_f(s['datasheet_bf16_tflops'])} TFLOP/s" if s['datasheet_bf16_tflops'] else '')
         + f"; wall {rep['wall_s']:.0f} s of {rep['budget_s']:.0f} s.", '',
         '| stage | status | seconds (budget) | note |', '|---|---|---|---|']
    for k, v in rep['stages'].items():
        L.append(f"| {k} | {v.get('status')} | {_f(v.get('seconds'), '{:.0f}')} ({_f(v.get('budget_s'), '{:.0f}')}) | "
                 f"{(v.get('reason') or '').splitlines()[0][:100] if v.get('reason') else ''} |")
    L += ['', '| network | path | steps/s | images/s | speed-up | TFLOP/s | MFU (measured peak) | MFU (datasheet) | '
          'loss diff step 0 (tol) | max over steps (MC noise) | warm-up s |', '|---' * 11 + '|']
    for m, mr in model_results(rep).items():
        for p, r in mr['train'].items():
            lc = r.get('loss_check')
            ok = lambda b: 'ok' if b else 'FAIL'
            chk = '— | —' if not lc else (f"{lc['first_rel']:.1e} ({lc['rtol']:.0e}) {ok(lc['ok_first'])} | "
                                          f"{lc['max_rel']:.1e} ({lc['noise_rel']:.1e}) {ok(lc['ok_noise'])}")
            mfu_d = r.get('mfu_datasheet')
            L.append(f"| {m} | {p}{' ★' if p == mr.get('recommended') else ''} | {_f(r['steps_per_s'])} | "
                     f"{_f(r['images_per_s'])} | {_f(r.get('speedup'), '{:.2f}x')} | {_f(r.get('tflops'))} | "
                     f"{_f(100 * r['mfu'], '{:.1f} %')} | {_f(None if mfu_d is None else 100 * mfu_d, '{:.1f} %')} | "
                     f"{chk} | {_f(r['warmup_s'], '{:.1f}')} |")
        for p, why in mr.get('skipped', {}).items(): L.append(f"| {m} | {p} | skipped: {why} | | | | | | | | |")
        for p in mr.get('errors', {}): L.append(f"| {m} | {p} | error (traceback in the JSON) | | | | | | | | |")
    L += ['', '| training | steps | steps/s (steady) | final loss (last 10 %) | stopped by |', '|---|---|---|---|---|']
    for k in ('train_cpu', 'train_paper'):
        t = s.get(k)
        if t: L.append(f"| {k}{' (' + t['path'] + ')' if t.get('path') else ''} | {t['steps']} | "
                       f"{_f(t['steps_per_s'])} | {_f(t['loss'], '{:.4g}')} | {t['stopped_by']} |")
    dom, inc = s.get('domain_fid') or {}, s.get('inception_fid') or {}
    if dom:
        L += ['', '| samples | domain FID | Inception FID |', '|---|---|---|']
        for k in dom: L.append(f"| {k} | {_f(dom[k], '{:.2f}')} | {_f(inc.get(k), '{:.2f}')} |")
    L.append(''); L.append(f"DDP step check: {s.get('ddp_ok')}.")
    return '\n'.join(L)

if __name__ == '__main__':
    r = main()
    sys.exit(r if isinstance(r, int) else 0)
