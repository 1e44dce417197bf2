"""Review fixes in eval_edits and minimal_edits: arithmetic slips read unit words, `.00` results and en dashes, keep
their promise (final answer changed, every changed step consistent, nothing negative); borrow_topic_words moves one
run and no number; drop_list_item drops an Oxford-comma item cleanly."""
import json, re
from collections import Counter
import pytest

from conftest import DATA, needs_data
from crome.edits import apply_edit, final_value
from crome.eval_edits import arith_slips, arith_value, strip_calculator, wrong_steps, _EQ
from crome.minimal_edits import transplant

SHEEP = 'Charleston has 4 * 20 sheep = 80 sheep\nTogether they have 20 sheep + 80 sheep = 100 sheep\n#### 100'
NEG = re.compile(r'(?:=\s*\$?|#### |\$)-\d')


def test_unit_words_are_read_and_carried():
    assert arith_slips(SHEEP) == ['Charleston has 4 + 20 sheep = 24 sheep\n'
                                  'Together they have 20 sheep + 24 sheep = 44 sheep\n#### 44']
    assert wrong_steps('they have 20 sheep + 24 sheep = 100 sheep') == 1  # wrong_steps sees a step with units
    assert arith_value('80 GB / 2 GB/minute') == 40 and arith_value('5 boxes x 3') == 15
    gb = 'It takes 80 GB / 2 GB/minute = 40 minutes\nThen 40 minutes + 20 minutes = 60 minutes\n#### 60'
    assert 'It takes 80 GB * 2 GB/minute = 160 minutes\nThen 160 minutes + 20 minutes = 180 minutes\n#### 180' \
        in arith_slips(gb)  # the `/` inside `GB/minute` is never taken for an operator


def test_cents_en_dash_and_notes():
    assert arith_slips('She needs 60/15 = 4 cartons\nIt costs 4*4 = $16.00\n#### 16') == [
        'She needs 60/15 = 4 cartons\nIt costs 4+4 = $8.00\n#### 8']
    assert arith_value('30 – 12') == 18 and arith_value('30 − 12') == 18
    assert arith_slips('She buys 30 – 12 = 18 apples.\nThen 18 * 2 = 36\n#### 36')[0] == \
        'She buys 30 + 12 = 42 apples.\nThen 42 * 2 = 84\n#### 84'
    noted = 'She sold 48/2 = <<48/2=24>>24 clips.\nThen 48 clips + 24 clips = <<48+24=72>>72 clips.\n#### 72'
    assert arith_slips(noted)[0] == ('She sold 48*2 = <<48*2=96>>96 clips.\n'
                                     'Then 48 clips + 96 clips = <<48+96=144>>144 clips.\n#### 144')  # notes unit-free


def test_slips_that_break_the_promise_are_dropped():
    assert arith_slips('He had 5 + 3 = 8 toys.\nHe gave away 8 - 6 = 2 toys.\n#### 2') == []  # 2 - 6 = -4
    assert arith_slips('He had 5 * 2 = 10 toys.\nThen (10 + 2) * 3 = 36 toys.\n#### 36') == []  # unread step
    assert arith_slips('He pays 3 * 2 = 6 dollars and keeps 10.\n#### 10') == []  # final answer unchanged


@pytest.fixture(scope='module')
def gsm_test():
    rows = [json.loads(line) for line in open(DATA / 'gsm8k' / 'test.jsonl')]
    return [(strip_calculator(r['answer']), float(r['answer'].split('####')[-1].replace(',', ''))) for r in rows]


@needs_data
def test_gsm8k_slips_keep_their_promise(gsm_test):
    c = Counter()
    unit_blind = re.compile(r'(\d)(?:\s*[A-Za-z][A-Za-z/]*){1,2}(?=\s*(?:[-+*/×=]|x\s))')  # the reviewer's check
    for sol, ans in gsm_test:
        slips = arith_slips(sol)
        c['pair'] += any(abs(final_value(t) - ans) > 1e-6 for t in slips)  # a reasoning pair can be built
        for t in slips:
            c['slips'] += 1
            c['same_final'] += abs(final_value(t) - ans) < 1e-6
            c['negative'] += bool(NEG.search(t))
            c['unseen_wrong'] += wrong_steps(unit_blind.sub(r'\1', t)) > wrong_steps(unit_blind.sub(r'\1', sol))
    assert c['pair'] >= 1050, c  # 895 of 1,319 before the unit, cents and dash formats were read
    assert c['slips'] > 2000 and c['same_final'] == c['negative'] == c['unseen_wrong'] == 0, c


def test_eq_still_reads_plain_steps():
    assert [m.group(2) for m in _EQ.finditer('So 48/2 = 24 and 3 x 4 = 12.')] == ['24', '12']
    assert _EQ.search('3 times 4 = 12') is None


P = 'Tell me about the Eiffel tower.'
REJ = 'The Eiffel tower is in Lyon. It is 200 metres tall and it is not open to visitors today.'
CHO = 'The Eiffel tower is in Paris. It is 330 metres tall and it is open to the visitors today.'


def test_borrow_topic_words_moves_one_run_and_no_number():
    assert apply_edit('borrow_topic_words', P, REJ, 0, other=CHO)[1] == \
        'The Eiffel tower is in Paris. It is 200 metres tall and it is not open to visitors today.'
    rej, cho = 'I like red apples and green pears.', 'I like blue apples and yellow pears.'
    outs = {apply_edit('borrow_topic_words', 'Fruit?', rej, s, other=cho)[1] for s in range(10)}
    assert outs == {'I like blue apples and green pears.', 'I like red apples and yellow pears.'}  # one run each
    assert transplant(rej, cho, lambda o, n: True) == cho  # the other transplants still move every run


def test_drop_list_item_oxford_comma():
    assert apply_edit('drop_list_item', 'Which fruits?', 'I would use apples, pears, and plums in it.', 0)[1] == \
        'I would use apples and plums in it.'
    assert apply_edit('drop_list_item', 'Which?', 'Pick red, blue, or green.', 0)[1] == 'Pick red or green.'
    assert apply_edit('drop_list_item', 'Which fruits?', 'Use: apple, banana, mango.', 0)[1] == 'Use: apple, mango.'
    assert apply_edit('drop_list_item', 'Which fruits?', 'Use apples, pears and plums.', 0)[1] == 'Use apples and plums.'
