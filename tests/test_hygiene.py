"""Evaluation hygiene (METHOD section 7): what trains never tests. Splits share no prompt and no answer text, and
rows that borrow text from other rows (IQN, RRM, GSM8K negatives) borrow only inside their own split."""
import warnings
import pytest
from crome.demo import make_demo
from crome.data import prompt_key, shared_responses
from crome.schema import text_of
from crome.neutrals import augment


@pytest.fixture(scope='module')
def demo():
    return make_demo(600, cues=[], seed=1)


def _texts(rows): return {text_of(r[k]).strip() for r in rows for k in ('chosen', 'rejected')}


def test_demo_splits_share_no_prompt_and_no_answer(demo):
    held = {'validation': demo['val_clean'], 'test': demo['clean']}
    assert shared_responses({'train': demo['train'], **held}) == {('train', 'validation'): 0, ('train', 'test'): 0,
                                                                  ('validation', 'test'): 0}
    prompts = {k: {prompt_key(p) for p in v['prompt']} for k, v in {'train': demo['train'], **held}.items()}
    assert not (prompts['train'] & prompts['test']) and not (prompts['train'] & prompts['validation'])


def test_augmentations_borrow_only_from_their_own_split(demo):
    "IQN prompts, RRM's non-contextual answers and causal donors all come from the split that is augmented."
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        res = augment(demo['train'], kinds=('causal', 'iqn', 'rrm'), seed=0, include_original=False, progress=False)
    rows = list(res.records)
    assert {r['kind'] for r in rows} >= {'iqn', 'rrm'}
    held = _texts(demo['val_clean']) | _texts(demo['clean'])
    held_prompts = {text_of(p).strip() for p in list(demo['val_clean']['prompt']) + list(demo['clean']['prompt'])}
    assert not (_texts(rows) & held), 'an augmented row carries a validation or test answer'
    assert not ({text_of(r['prompt']).strip() for r in rows} & held_prompts), 'an augmented row uses a held-out prompt'


def test_the_check_can_fail(demo):
    "Augmenting train and test together (the trap) does leak test answers into training rows."
    from datasets import concatenate_datasets
    both = concatenate_datasets([demo['train'], demo['clean']])
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        rows = list(augment(both, kinds=('iqn',), seed=0, include_original=False, progress=False).records)
    train_prompts = {text_of(p).strip() for p in demo['train']['prompt']}
    leaked = [r for r in rows if text_of(r['prompt']).strip() in train_prompts and _texts([r]) & _texts(demo['clean'])]
    assert leaked
