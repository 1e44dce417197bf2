"""Demo generator: planted correlations, determinism, cue detection, and isolation from augmentation."""
import re
from pathlib import Path
import pytest
from crome.demo import make_demo, CueSpec, CUES, add_cue, has_cue, TASKS, relevance_pair, requested_item_pair
import random

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize('kind', CUES)
@pytest.mark.parametrize('rho', [0.5, 0.7, 0.9, 1.0])
def test_planted_share_matches_rho(kind, rho):
    d = make_demo(600, cues=[CueSpec(kind, rho, 2)], seed=7)
    tr = d['train']
    on_chosen = sum(has_cue(c, kind) for c in tr['chosen']) / len(tr)
    on_rejected = sum(has_cue(r, kind) for r in tr['rejected']) / len(tr)
    assert abs(on_chosen - rho) <= 0.02 and abs(on_rejected - (1 - rho)) <= 0.02
    assert all(has_cue(c, kind) != has_cue(r, kind) for c, r in zip(tr['chosen'], tr['rejected']))  # exactly one side
    assert not any(has_cue(t, kind) for t in list(d['clean']['chosen']) + list(d['clean']['rejected']))
    assert all(has_cue(r, kind) and not has_cue(c, kind) for c, r in zip(d['reversed']['chosen'], d['reversed']['rejected']))


def test_several_cues_independent():
    d = make_demo(800, cues=[CueSpec('signoff', 0.9), CueSpec('markdown', 0.6), CueSpec('verbosity', 0.75, 3)], seed=1)
    for kind, rho in (('signoff', .9), ('markdown', .6), ('verbosity', .75)):
        assert abs(sum(has_cue(c, kind) for c in d['train']['chosen']) / len(d['train']) - rho) <= 0.02


def test_deterministic_and_seed_sensitive():
    a, b, c = make_demo(300, seed=5), make_demo(300, seed=5), make_demo(300, seed=6)
    for split in ('train', 'clean', 'reversed'):
        assert a[split].to_list() == b[split].to_list()
    assert a['train'].to_list() != c['train'].to_list()


def test_splits_share_no_prompt_and_clean_equals_reversed_pairs():
    d = make_demo(1000, seed=2)
    assert not set(d['train']['prompt']) & set(d['clean']['prompt'])
    assert list(d['clean']['id']) == list(d['reversed']['id'])
    assert 0.2 < len(d['clean']) / 1000 < 0.3


def test_causal_attribute_is_the_only_systematic_difference():
    rng = random.Random(0)
    for _ in range(200):
        p, c, r = requested_item_pair(rng)
        need = re.search(r'(?:include|Make sure|contain|leave out) (\w+)', p).group(1)
        assert need in c.split() or need + '.' in c.split() or need + ',' in c.split()
        assert need not in re.findall(r'\w+', r)
        assert len(c.split()) == len(r.split())  # same template, same number of words
        p, c, r = relevance_pair(rng)
        assert len(c.split()) == len(r.split()) and c != r


def test_cues_never_in_base_answers():
    rng = random.Random(3)
    for _ in range(300):
        for f in TASKS.values():
            p, c, r = f(rng)
            assert not any(has_cue(t, k) for t in (p, c, r) for k in CUES)


def test_bad_arguments():
    with pytest.raises(ValueError, match='unknown cue'): CueSpec('glitter')
    with pytest.raises(ValueError, match='rho'): CueSpec('signoff', 1.5)
    with pytest.raises(ValueError, match='strength'): CueSpec('signoff', .9, 4)
    with pytest.raises(ValueError, match='unknown task'): make_demo(10, tasks='poetry')


def test_bad_task_shares_name_the_task():
    "A negative / NaN / non-numeric share, or all-zero shares, is a ValueError naming the task and its value."
    with pytest.raises(ValueError, match="'requested_item': -0.5"):
        make_demo(10, tasks={'relevance': 1.0, 'requested_item': -0.5})
    with pytest.raises(ValueError, match="all be zero.*'relevance': 0, 'requested_item': 0"):
        make_demo(10, tasks={'relevance': 0, 'requested_item': 0})
    with pytest.raises(ValueError, match="'relevance': nan"): make_demo(10, tasks={'relevance': float('nan')})
    with pytest.raises(ValueError, match="'relevance': None"): make_demo(10, tasks={'relevance': None})


# The only modules that may know the testbed: demo itself, the stress test built on it, the inspect/report stage and the
# pipeline/CLI that wire a testbed in. Every other module (a new one included) is checked.
MAY_IMPORT_DEMO = {'demo', 'stress', 'inspect', 'figures', 'train_figures', 'examples', 'unfinished', 'report', 'views',
                   'config', 'run_state', 'stages', 'pipeline', 'compare', 'sweep', 'cli_args', 'cli', '__main__',
                   '__init__', '_modidx'}


def test_augmentation_never_sees_the_demo_module():
    """The augmentation may not know which cue a testbed planted: no module from rubrics/oracle through training and
    evaluation (and none split off them) imports crome.demo or its cue word lists."""
    lib = ROOT / 'crome'
    assert not [m for m in MAY_IMPORT_DEMO if not (lib / f'{m}.py').exists()], 'MAY_IMPORT_DEMO names a missing module'
    checked = sorted(p.stem for p in lib.glob('*.py') if p.stem not in MAY_IMPORT_DEMO)
    core = {'oracle', 'offline_rubrics', 'rubrics', 'edits', 'spurious_edits', 'augment_base', 'augment', 'neutrals',
            'llm_rewrite', 'filter', 'model', 'frozen', 'losses', 'train', 'frozen_fit', 'train_pairs'}
    assert core <= set(checked), core - set(checked)
    bad = [m for m in checked
           if re.search(r'crome\.demo|from \.demo|import demo|SIGNOFFS|FILLERS', (lib / f'{m}.py').read_text())]
    assert not bad, f'these modules see the demo testbed: {bad}'


@pytest.mark.slow
def test_causal_attributes_learnable_by_default_backbone():
    """Issue 2's acceptance check: a vanilla RM on the default backbone (frozen MiniLM + MLP head), trained with
    no cue planted, reaches >= 0.85 accuracy on the clean test split, on each causal-attribute kind."""
    import numpy as np
    from crome.frozen import FrozenRewardModel
    from crome.frozen_fit import fit_frozen
    d = make_demo(2000, cues=[], seed=0)  # 1,200 training pairs (60%), as many as 1,600 at the old 75/25 split
    fm = fit_frozen(FrozenRewardModel(max_length=128, seed=0), d['train'], recipe='vanilla', epochs=40, lr=1e-3)
    te = d['clean']
    correct = fm.score(te['prompt'], te['chosen']) > fm.score(te['prompt'], te['rejected'])
    sub = np.array(te['subset'])
    accs = {t: correct[sub == t].mean() for t in TASKS}
    print('clean accuracy', correct.mean(), accs)
    assert correct.mean() >= 0.85 and min(accs.values()) >= 0.8, accs


def test_excluded_item_pairs_rule_out_what_only_the_rejected_answer_has():
    "The third testbed task: the prompt rules out one item; only the rejected answer (same template) contains it."
    from crome.offline_rubrics import ruled_out
    d = make_demo(300, tasks='excluded_item', seed=2)
    n = 0
    for split in ('train', 'clean'):
        for r in d[split]:
            avoid, = ruled_out(r['prompt'])
            words = lambda t: set(re.findall(r'[a-z]+', t.lower()))  # noqa: E731
            assert avoid in words(r['rejected']) and avoid not in words(r['chosen']), r
            assert r['subset'] == 'excluded_item'
            n += 1
    assert n >= 250
    assert 'excluded_item' in TASKS and make_demo(100, seed=2)['train']['subset'].count('excluded_item') == 0
