"""Regression tests from the oracle / rubric review: offline evidence from the user's turns only, distinct samples
at temperature > 0, failed rubric reviews counted and warned about, bad numbers in the oracle's variables named."""
import itertools, json, re, warnings

import httpx
import openai
import pytest
from datasets import Dataset

from crome.offline_rubrics import domain_scores, offline_attributes, user_turns
from crome.oracle import OpenAICompatibleOracle, oracle_from_env
from crome.oracle_base import BaseOracle, Completion
from crome.rubrics import offline_reasons, offline_rubric, rubric_failures, rubricate, rubrics_of

SAID = "Make sure the name is short. I'm sorry, but I won't pick a name that could hurt anyone."
CONV = [{'role': 'user', 'content': 'What is a good name for my cat?'}, {'role': 'assistant', 'content': SAID},
        {'role': 'user', 'content': 'ok, any ideas?'}]
HH = f'Human: What is a good name for my cat?\n\nAssistant: {SAID}\n\nHuman: ok, any ideas?'


@pytest.mark.parametrize('prompt', [CONV, HH], ids=['messages', 'hh-transcript'])
def test_offline_evidence_reads_only_the_user_turns(prompt):
    assert user_turns(prompt) == 'What is a good name for my cat?\nok, any ideas?'
    r = offline_rubric(prompt, 'Try Milo.', 'Try Luna.')
    assert r.domain == 'chat'  # was 'safety': 'hurt' in the assistant's turn
    assert r.names == ['correctness', 'relevance', 'clarity', 'helpfulness', 'honesty']  # no completeness / i.f.
    why = offline_reasons(r)
    assert why['correctness'] == "usual for chat prompts; the request asks for facts: 'What'"
    assert domain_scores(prompt, ['Try Milo.', 'Try Luna.'])['safety'] == 0


def test_offline_evidence_still_reads_user_turns_and_answers():
    conv = [{'role': 'assistant', 'content': 'Hello.'}, {'role': 'user', 'content': 'How do I make a bomb?'}]
    assert offline_attributes(conv, 'No.', "I'm sorry, but I can't help with that.")[0] == 'safety'
    hh = 'Human: Name three fish. Make sure to include trout.\n\nAssistant: Why trout?\n\nHuman: I like it.'
    names = [a['name'] for a in offline_attributes(hh, 'Trout, cod, tuna.', 'Cod, tuna, carp.')[1]]
    assert 'completeness' in names and 'instruction_following' in names
    assert user_turns('Say hi.\nAssistant: hi') == 'Say hi.\nAssistant: hi'  # a plain string is all request


def _mock_oracle(calls: list, cache):
    draws = itertools.count()
    def handler(req):
        body = json.loads(req.content); calls.append(body)
        return httpx.Response(200, json={'id': 'x', 'object': 'chat.completion', 'created': 0, 'model': 'm',
                                         'choices': [{'index': 0, 'finish_reason': 'stop', 'message': {
                                             'role': 'assistant', 'content': f'sample {next(draws)}'}}],
                                         'usage': {'prompt_tokens': 1, 'completion_tokens': 1, 'total_tokens': 2}})
    o = OpenAICompatibleOracle('http://fake/v1', 'm', cache=cache, progress=False, backoff=0, max_retries=0)
    o.client = openai.OpenAI(base_url='http://fake/v1', api_key='EMPTY', max_retries=0,
                             http_client=httpx.Client(transport=httpx.MockTransport(handler)))
    return o


def test_sampling_sends_each_identical_request_and_replays_the_samples(tmp_path):
    calls = []
    o = _mock_oracle(calls, tmp_path / 'c')
    first = o.complete_many(['tell a joke'] * 4, temperature=0.9)
    assert len(calls) == 4 and len({c.text for c in first}) == 4 and not any(c.cached for c in first)
    again = o.complete_many(['tell a joke'] * 4, temperature=0.9)  # a rerun: the same samples, in order, free
    assert len(calls) == 4 and [c.text for c in again] == [c.text for c in first] and all(c.cached for c in again)
    o2 = _mock_oracle(calls, tmp_path / 'c2')
    assert len({c.text for c in o2.complete_many(['q'] * 3)}) == 1 and len(calls) == 5  # greedy: merged
    seeded = o2.complete_many(['q'] * 3, temperature=0.9, seed=7)
    assert len({c.text for c in seeded}) == 1 and len(calls) == 6 and calls[-1]['seed'] == 7  # seeded: merged


def _review_down():
    names = ['correctness', 'relevance', 'completeness', 'clarity', 'safety']
    attrs = json.dumps({'attributes': [{'name': n, 'description': 'measures ' + n, 'weight': 0.2} for n in names]})
    els = json.dumps({'elements': {n: [{'description': f'elem {j}', 'direction': 'positive'} for j in range(5)]
                                   for n in names}})
    class ReviewDown(BaseOracle):
        backend = 'review-down'
        def _run(self, items, done):
            for k, m, p in items:
                u = m[-1]['content']
                if 'Review the rubric' in u: c = Completion(error='RateLimitError: 429 - slow', attempts=6)
                elif 'causal elements' in u: c = Completion(els, finish_reason='stop', attempts=1)
                else: c = Completion(attrs, finish_reason='stop', attempts=1)
                done(k, c)
    return ReviewDown('m', cache=False, progress=False)


def test_failed_reviews_are_warned_about_and_counted():
    ds = Dataset.from_dict({'prompt': ['q1', 'q2'], 'chosen': ['a', 'b'], 'rejected': ['c', 'd']})
    with pytest.warns(UserWarning, match='2 of 2 rubric reviews failed') as rec:
        out = rubricate(ds, _review_down(), progress=False)
    assert not any('rubrics failed' in str(w.message) for w in rec)  # the rubrics themselves are usable
    assert list(out['rubric_error']) == ['', ''] and rubric_failures(out) == {'review_failed': 2}
    assert [r.review for r in rubrics_of(out)] == ['failed: oracle: review: RateLimitError: 429 - slow'] * 2
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # offline rubrics have no review: no warning, nothing counted
        assert rubric_failures(rubricate(ds, progress=False)) == {}


@pytest.mark.parametrize('var,bad,kind', [('CROME_ORACLE_CONCURRENCY', 'eight', 'an integer'),
                                          ('CROME_ORACLE_TIMEOUT', '60s', 'a number of seconds'),
                                          ('CROME_ORACLE_MAX_RETRIES', '3.0', 'an integer')])
def test_bad_number_in_oracle_env_names_the_variable(var, bad, kind):
    with pytest.raises(ValueError, match=re.escape(f"{var}={bad!r} is not {kind}")):
        oracle_from_env(cache=False, env={'CROME_ORACLE_URL': 'http://127.0.0.1:9/v1', var: bad})


def test_good_numbers_in_oracle_env_still_reach_the_oracle():
    o = oracle_from_env(cache=False, env={'CROME_ORACLE_URL': 'http://127.0.0.1:9/v1', 'CROME_ORACLE_CONCURRENCY': '3',
                                          'CROME_ORACLE_TIMEOUT': '7.5', 'CROME_ORACLE_MAX_RETRIES': ''})
    assert (o.max_concurrency, o.timeout) == (3, 7.5)
    assert oracle_from_env(cache=False, env={'CROME_ORACLE_URL': 'http://127.0.0.1:9/v1'}).max_concurrency == 8
