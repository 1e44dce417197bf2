import os, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault('HF_DATASETS_OFFLINE', '1')
os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
os.environ.setdefault('TOKENIZERS_PARALLELISM', 'false')
os.environ.setdefault('TQDM_DISABLE', '1')
sys.path.insert(0, str(ROOT))
# The one data folder every test reads (crome.data.data_dir, the loaders' default): $CROME_DATA; when it is unset,
# a shared copy next to the checkout (../shared/data, or $CROME_SHARED_DATA) if there is one, else crome's cache.
_SHARED = Path(os.environ.get('CROME_SHARED_DATA', ROOT.parent / 'shared' / 'data'))
if 'CROME_DATA' not in os.environ and _SHARED.is_dir(): os.environ['CROME_DATA'] = str(_SHARED)
DATA = Path(os.environ.get('CROME_DATA', Path.home() / '.cache' / 'crome' / 'data'))
HAVE_DATA = all((DATA / f).exists() for f in ('hh-rlhf/harmless-base/test.jsonl.gz', 'gsm8k/train.jsonl',
                                              'gsm8k/test.jsonl', 'pandalm/testset-v1.json'))
NO_DATA_REASON = ('the public data sets are not in CROME_DATA / ~/.cache/crome/data: run `crome data get` once '
                  '(online) and put PandaLM testset-v1.json in pandalm/ (see README, "Real data")')
import pytest  # noqa: E402
needs_data = pytest.mark.skipif(not HAVE_DATA, reason=NO_DATA_REASON)
import re  # noqa: E402
# a loader called without a path (its default is the data folder), or the data folder named directly
REAL_DATA = re.compile(r"load_(hh_rlhf|gsm8k|pandalm)\((\)|return_report|conversational)|\bDATA /")


def pytest_collection_modifyitems(config, items):
    """Without the public sets, skip the test functions that read them (with the reason). A notebook is not skipped
    whole: its cells that read them carry `#| data`, which tests/test_notebooks.py skips then (the others run)."""
    if HAVE_DATA: return
    import inspect
    for it in items:
        if getattr(it, 'callspec', None) and 'nb' in it.callspec.params: continue  # a notebook: skipped per cell
        try: src = inspect.getsource(it.function)
        except (OSError, TypeError): src = ''
        info = getattr(it, '_fixtureinfo', None)  # fixtures that load the data count too
        for name in getattr(it, 'fixturenames', ()):
            for fd in (info.name2fixturedefs.get(name, ()) if info else ()):
                try: src += inspect.getsource(fd.func)
                except (OSError, TypeError): pass
        if REAL_DATA.search(src) and "setenv('CROME_DATA'" not in src:
            it.add_marker(pytest.mark.skip(reason=NO_DATA_REASON))


def run_py(*args):
    "`python ARGS` from the repository root (e.g. `run_py('-m', 'crome', 'data', '--help')`), output captured."
    import subprocess
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT, timeout=120)


def tiny_backbone(root):
    "A 1-layer random BERT with MiniLM's tokenizer saved under root/bb (seconds to build; for pipeline and CLI tests)."
    import torch
    from transformers import BertConfig, BertModel
    from crome.model import default_backbone, load_tokenizer
    tok = load_tokenizer(default_backbone())
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=tok.vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=32)).save_pretrained(root / 'bb')
    tok.save_pretrained(root / 'bb')
    return root / 'bb'
