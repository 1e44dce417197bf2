"""Write benchmarks/results/RESULTS.md, the README's results section, from the results JSON files: every number in
it is read from a file that records the commit, config, seeds and device it came from. Nothing here is typed by hand.

Usage: python benchmarks/results_md.py [--out benchmarks/results/RESULTS.md]"""
import argparse, json, subprocess
from pathlib import Path
import pandas as pd
from common import RESULTS

NAMES = {'vanilla': 'vanilla', 'rrm': 'RRM', 'crome': 'Crome', 'odin': 'ODIN', 'mmd': 'MMD', 'length': 'longer wins',
         'cosine': 'cosine (untrained)'}


def load(name):
    p = RESULTS / name
    return json.loads(p.read_text()) if p.exists() else None


HEAD_LR_GAIN = 'f575261'  # the commit from which a rescaled reward head (ODIN's) learns at lr x its gain


def predates(commit: str, change: str = HEAD_LR_GAIN) -> bool | None:
    "True when `commit` does not contain `change` (git ancestry), None when git cannot tell."
    try: rc = subprocess.run(['git', 'merge-base', '--is-ancestor', change, commit], capture_output=True).returncode
    except OSError: return None
    return {0: False, 1: True}.get(rc)


def odin_note(meta) -> list[str]:
    "A line saying that a run's ODIN trained its rescaled head at the plain learning rate, when it did."
    if 'odin' not in meta.get('config', {}).get('recipes', []) or not predates(meta.get('commit', '')): return []
    return [f"_ODIN in this run trained its rescaled head at the plain learning rate: the run predates `head_lr_gain` "
            f"(commit `{HEAD_LR_GAIN}`), under which the head learns at the learning rate times its rescale gain._", '']


def ci(m, lo, hi) -> str: return f'{m:.3f} [{lo:.3f}, {hi:.3f}]'


def meta_line(meta) -> str:
    dirty = ' (uncommitted changes)' if meta.get('dirty') else ''
    return (f"_`{meta.get('command', '?')}` at commit `{meta.get('commit', '?')[:10]}`{dirty}; seeds "
            f"{', '.join(map(str, meta.get('seeds', [])))}; {meta.get('device', '?')}; "
            f"{meta.get('seconds', 0) / 60:.0f} min._")


def md(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    rows = ['| ' + ' | '.join(cols) + ' |', '|' + '---|' * len(cols)]
    rows += ['| ' + ' | '.join(str(v) for v in r) + ' |' for r in df.itertuples(index=False)]
    return '\n'.join(rows)


def testbed(q, title: str = '### Planted-cue testbed') -> list[str]:
    S = pd.DataFrame(q['testbed_summary'])
    cfg = q['meta'].get('config', {})
    rs = q.get('resummarised') or {}
    redo = ([f"_Intervals recomputed from the run's stored per-pair verdicts at commit `{rs['commit'][:10]}` "
             f"(`quality.py {rs['command']}`), with the pairs a seed's cue kinds share resampled once._", '']
            if 'testbed' in rs.get('parts', []) else [])
    out = [title, '', meta_line(q['meta']), ''] + redo + [
           f"Trainer: {cfg.get('trainer', '?')}; recipes {', '.join(NAMES.get(r, r) for r in S.recipe.unique())}; "
           f"cue kinds {', '.join(cfg.get('cues', []))}; {cfg.get('n_demo', '?')} demo pairs per task.", '',
           'Accuracy on the test split with 95% intervals (pooled over cue kinds and seeds). *clean*: no cue; '
           '*reversed*: the cue on every rejected answer (a model that learned the cue fails there); *flipped*: share '
           'of clean-correct pairs the cue flips (lower is better).', '']
    for task, g in S.groupby('task', sort=False):
        t = pd.DataFrame({'recipe': [NAMES.get(r, r) for r in g.recipe],
                          'clean': [ci(*x) for x in zip(g['clean'], g.clean_low, g.clean_high)],
                          'reversed': [ci(*x) for x in zip(g['reversed'], g.reversed_low, g.reversed_high)],
                          'flipped': [f'{x:.3f}' for x in g.flip_share]})
        kind = 'contextual' if task == 'relevance' else 'within-prompt'
        out += [f'**{task.replace("_", " ")}** ({kind} attribute)', '', md(t), '']
    D = pd.DataFrame(q['testbed_differences'])
    out += ['Paired differences (same pairs, same seeds):', '']
    out += [f"- {r.task}, {r.split}: {r.verdict}" for r in D.itertuples()]
    od = S[S.recipe == 'odin']
    if len(od) and (od['reversed'] > 0.95).all():
        what = {'signoff': 'a sign-off', 'verbosity': 'filler sentences', 'markdown': 'markdown marks'}
        cues = q['meta']['config']['cues']
        kinds = 'This cue kind adds' if len(cues) == 1 else f'These {len(cues)} cue kinds all add'
        out += ['', f"_{kinds} characters ({', '.join(what.get(c, c) for c in cues)}), so a "
                "model with a dedicated length head absorbs it: ODIN's near-perfect reversed accuracy says that the "
                'testbed cues are length-confounded, not that ODIN learns the within-prompt attribute (its clean '
                'accuracy is the measure of that). The length-neutral `exclaim` section below separates ODIN from a '
                'real fix._']
    G = pd.DataFrame(q['testbed_goals'])
    out += ['', 'Goals of the project, as measured:', '']
    out += [f"- {r.goal}: {'met' if r.met else '**not met**'} ({r.diff:+.3f} [{r.low:+.3f}, {r.high:+.3f}])"
            for r in G.itertuples()]
    return out + ['']


POOLED = 'All pairs (pooled)'  # older results files call it 'Avg'; it is not RewardBench's mean of sections


def real(q) -> list[str]:
    P = pd.DataFrame(q['real_power']).replace({'section': {'Avg': POOLED}})
    sizes = q['real_sizes']
    out = ['### Real data', '', meta_line(q.get('meta_real', q['meta'])), '',
           f"{sizes['train']} training / {sizes['validation']} validation / {sizes['test']} test pairs, split by prompt. "
           'Accuracy per section with 95% intervals; the two untrained baselines decide whether a section can rank '
           'recipes at all.', '']
    piv = {}
    for r in P.itertuples():
        piv.setdefault(r.section, {})[NAMES.get(r.model, r.model)] = ci(r.accuracy, r.low, r.high)
    models = [NAMES.get(m, m) for m in P.model.unique()]
    t = pd.DataFrame([{'section': s, **{m: v.get(m, '') for m in models}} for s, v in piv.items()])
    out += [md(t), '', f'_{POOLED}: every test pair counted once, so sections weigh by their size; it is not '
            "RewardBench's Avg (the mean of the section accuracies)._", '']
    power = P.groupby('section').has_power.first()
    for s, hp in power.items():
        if hp:
            above = ', '.join(NAMES.get(m, m) for m in P[(P.section == s) & P.above_baselines].model)
            out.append(f'- {s}: {above} significantly above both untrained baselines: this section can rank recipes.')
        else:
            out.append(f'- {s}: no recipe is significantly above both untrained baselines: **this section cannot rank '
                       'recipes** at this model size.')
    D = pd.DataFrame(q['real_differences']).replace({'section': {'Avg': POOLED}})
    out += ['', 'Paired differences:', ''] + [f'- {r.section}: {r.verdict}' for r in D.itertuples()]
    sec = [s for s in power.index if s != POOLED]
    if not any(power[s] for s in sec) and power.get(POOLED, False):
        out += ['', '_Only the pooled average has power, and it mixes sections of different kinds; per section, no '
                'recipe beats both baselines, so these data cannot rank recipes section by section._']
    R = pd.DataFrame(q['real_robustness_drops'])
    R = R[R.side == 'both']
    d = R.set_index('model')['drop']
    if {'crome', 'vanilla'} <= set(d.index):
        half = d['crome'] <= d['vanilla'] / 2
        v = R.set_index('model').get('verdict', pd.Series(dtype=object)).get('crome')
        goal = [f"Goal \"Crome's drop at most half of vanilla's\": {'met' if half else '**not met**'} "
                f"({d['crome']:.3f} vs {d['vanilla']:.3f}); both drops are a few points at most."
                + (f' Paired difference of the drops: {v}; a difference inside the noise is not a ranking.'
                   if isinstance(v, str) else ''), '']
    else: goal = []
    out += ['', 'Robustness suite (eval-role meaning-preserving transformations on both answers; accuracy drop, '
            'micro-averaged, lower is better; ' + ('95% interval over seeds and test pairs, a pair\'s transformations '
                                                  'resampled together' if 'real_robustness_pairs' in q
                                                  else 'interval over seeds') + '):', '',
            md(pd.DataFrame({'model': [NAMES.get(m, m) for m in R.model], 'clean': R['clean'].round(3),
                             'transformed': R.accuracy.round(3), 'drop': [ci(*x) for x in zip(R['drop'], R.drop_low,
                                                                                              R.drop_high)]})), '']
    out += goal
    B = pd.DataFrame(q['real_bon'])
    b = B.groupby(['model', 'n']).accuracy.mean().unstack('n').round(3)
    ref = B.groupby('n')[['random_acc', 'oracle_acc']].mean().round(3)
    b.loc['random pick'] = ref.random_acc; b.loc['best possible (pass@N)'] = ref.oracle_acc
    b.index = [NAMES.get(i, i) for i in b.index]
    b.columns = [f'N={c}' for c in b.columns]
    out += [f"Best-of-N on {q['real_n_bon_pools']} GSM8K test questions (8 candidates: 2 right, 6 with an arithmetic "
            'slip; decorations drawn alike for both), accuracy of the pick:', '', md(b.reset_index(names='model')), '']
    return out


def fidelity(f) -> list[str]:
    runs = pd.DataFrame(f['runs'])
    g = runs.groupby('cue', sort=False).agg(kept=('kept_causal', 'mean'), upgrades=('upgrade_share', 'mean'),
                                            detector=('spurious_change_rate', 'max'), cue=('cue_change_rate', 'max'))
    g['without verifier'] = [max(r['spurious_change_rate'] for r in runs[runs.cue == c].without_verifier) for c in g.index]
    t = pd.DataFrame({'cue kind': g.index, 'kept causal pairs (mean)': g.kept.round(0).astype(int),
                      'upgrades': (100 * g.upgrades).round(1).astype(str) + '%',
                      'spurious change, verifier detectors (max)': (100 * g.detector).round(2).astype(str) + '%',
                      'planted cue changed (max)': (100 * g.cue).round(2).astype(str) + '%',
                      'detector change without the verifier (max)': (100 * g['without verifier']).round(1).astype(str) + '%'})
    return ['### Counterfactual fidelity of the offline causal edits', '',
            f"_`benchmarks/fidelity.py` at commit `{f['commit'][:10]}`; demo n={f['config']['n']}, seeds "
            f"{', '.join(map(str, f['seeds']))}._", '',
            'Kept causal pairs per demo set, the share that are upgrades of the rejected answer, and how often a kept '
            'pair also changed a spurious attribute. The verifier rejects a rewrite that its detectors flag, so its '
            'own rate is 0 by construction; the independent check is the planted cue (`crome.demo.has_cue`), which no '
            'verifier code reads.', '', md(t), '']


def speed(t, s) -> list[str]:
    out = ['### Speed', '']
    if t:
        runs = pd.DataFrame(t['runs']).T
        pad = runs.get('executed_padding_share', runs.padding_share).astype(float)
        tt = pd.DataFrame({'run': runs.index, 'pairs/s': runs.pairs_per_s.astype(float).round(2),
                           'non-pad tokens/s': runs.nonpad_tokens_per_s.astype(float).round(0).astype(int),
                           'padding computed': (100 * pad).round(1).astype(str) + '%',
                           'share of matmul peak': (100 * runs.share_of_peak.astype(float)).round(0).astype(int).astype(str)
                           + '%'})
        r = t['ratios_crome_over_trl']
        out += [f"Fine-tuning MiniLM, crome vs TRL's `RewardTrainer` like for like (`benchmarks/train_speed.py` at "
                f"`{t['git_commit'][:10]}`; {t['data']}; {t['device']}, load average {t['load_at_start']['loadavg_1_5_15'][0]}"
                f"). `on`/`off`: length-grouped sampling; crome runs its packed forward (no work on padding, same "
                "gradients) unless marked `padded`:", '', md(tt), '',
                f"crome / TRL pairs/s: {r['off']['pairs_per_s']:.2f}x without length grouping, "
                f"{r['on']['pairs_per_s']:.2f}x with it (both trainers grouped)"
                + (f", {r['on, padded forward']['pairs_per_s']:.2f}x with crome's packed forward off (the like-for-like "
                   "padded comparison)" if 'on, padded forward' in r else '')
                + '. Held-out accuracy is at chance at this size and is not compared. Compute share counts the plain '
                'forward-and-backward FLOPs of the non-pad tokens against a matmul probe run in the same process '
                '(goal 60%).', '']
    if s:
        rows = [dict(texts=k, **{'crome texts/s': round(v['texts_per_s']['crome'], 1),
                                 'pipeline, same batch': round(v['texts_per_s']['pipeline_bs32'], 1),
                                 'speedup, same batch': f"{v['speedup_same_batch']:.2f}x",
                                 'compiled, same batch': (f"{v['speedup_same_batch_compiled']:.2f}x"
                                                          if 'speedup_same_batch_compiled' in v else 'n/a'),
                                 'speedup vs batch 1': f"{v['speedup_vs_bs1']:.2f}x",
                                 'max abs score diff': f"{v['max_abs_diff_vs_pipeline_same_batch']:.0e}",
                                 'share of matmul peak': f"{v.get('share_of_peak_crome', float('nan')):.0%}",
                                 'pipeline share of peak': (f"{v['share_of_peak']['pipeline_bs32']['executed']:.0%}"
                                                            if 'pipeline_bs32' in v.get('share_of_peak', {}) else 'n/a'),
                                 'float32 ceiling': (f"{v['speedup_bound_equal_efficiency']:.2f}x"
                                                     if 'speedup_bound_equal_efficiency' in v else 'n/a'),
                                 **({'bf16 weights, same batch (other scores)': f"{v['speedup_same_batch_bf16']:.2f}x"}
                                    if 'speedup_same_batch_bf16' in v else {})})
                for k, v in s['distributions'].items()]
        bf = {k: v for k, v in s['distributions'].items() if 'speedup_same_batch_bf16' in v}
        met = {k: v['speedup_same_batch'] >= 2 for k, v in s['distributions'].items()}
        out += [f"Scoring vs a transformers `pipeline` (`benchmarks/score_speed.py` at `{s['git_commit'][:10]}`, batch "
                f"{s['config']['batch']}, {s['device']}):", '', md(pd.DataFrame(rows)), '',
                'Goal "2x the pipeline at the same batch, identical scores": '
                + '; '.join(f"{k}: {'met' if m else '**not met**'}" for k, m in met.items())
                + '. *Float32 ceiling*: the FLOPs the pipeline executes (its batches padded to their longest member) '
                "over the FLOPs crome executes, i.e. the speedup exact float32 scoring reaches when both run their matrix "
                "products equally fast (above it, crome's kernels ran faster than the pipeline's: its attention skips the "
                'masked padded grid); well past it needs other arithmetic (bf16, int8) and so other scores. Compute '
                'share is of a matmul probe run in the same process (goal 60%).'
                + (' *bf16 weights* (bfloat16 weights and activations on bf16 matrix units, float32 scores out) is that '
                   'other arithmetic, shown for the trade-off and not counted for the goal: max |score difference| to '
                   'the pipeline ' + ', '.join(f"{v['max_abs_diff_vs_pipeline_bf16']:.0e}" for v in bf.values())
                   + ' (score std ' + ', '.join(f"{v['score_std']:.2f}" for v in bf.values()) + '); text pairs '
                   'whose score order it keeps: ' + ', '.join(f"{v['pair_order_agreement_bf16']:.1%}" for v in bf.values())
                   + ' (float32: ' + ', '.join(f"{v['pair_order_agreement_float32']:.1%}" for v in bf.values()) + ').'
                   if bf else f" bf16 weights: {s.get('bf16', 'not measured')}."), '']
    return out


def ablation(a) -> list[str]:
    S = pd.DataFrame(a['summary'])
    b = S[S.task == 'both']
    t = pd.DataFrame({'variant': b.variant, 'clean': [ci(*x) for x in zip(b['clean'], b.clean_low, b.clean_high)],
                      'reversed': [ci(*x) for x in zip(b['reversed'], b.reversed_low, b.reversed_high)]})
    old = ([] if 'verdicts' in a else
           ["_This file predates crossed intervals (crome.stats): it resampled each cue kind's copy of a seed's "
            'pairs as if they were different pairs, so its intervals are too narrow, and it kept no per-pair '
            'verdicts to recompute them; rerun `crome_ablation.py`._', ''])
    rs = a.get('resummarised')
    old += [f"_Intervals recomputed from the run's stored per-pair verdicts at commit `{rs['commit'][:10]}` "
            f"(`crome_ablation.py {rs['command']}`): a seed's cue kinds share its pairs, the two tasks are strata._",
            ''] if rs else []
    out = ['### Design choices, selected on validation', '', meta_line(a['meta']), ''] + old + [
           "Crome's variants on the demo's validation splits (both tasks, 3 cue kinds, pooled):", '', md(t), '']
    if 'vs_default' in a:
        out += [f'- {r.verdict}' for r in pd.DataFrame(a['vs_default']).itertuples()] + ['']
        return out + [f"Selected: **{a['selected']}**.", '']
    return out + [f"This file was written by the script's first selection rule (highest point estimate: "
                  f"{a['selected']!r}). Every interval above overlaps the default's, so under the current rule (a variant "
                  'must be significantly better on paired differences) **the defaults stay** (lambda 1, tau 0.2, IQN '
                  'from original pairs, 1 per pair); rerun `crome_ablation.py` to record the paired verdicts.', '']


def main():
    p = argparse.ArgumentParser(); p.add_argument('--out', default=str(RESULTS / 'RESULTS.md'))
    a = p.parse_args()
    lines = ['<!-- generated by benchmarks/results_md.py from benchmarks/results/*.json: do not edit -->', '']
    q = load('quality.json')
    if q and 'testbed_summary' in q: lines += testbed(q) + odin_note(q['meta'])
    if q and 'real_power' in q: lines += real(q)
    qn = load('quality_length_neutral.json')
    if qn and 'testbed_summary' in qn:
        lines += testbed(qn, '### Planted-cue testbed, a length-neutral cue (`exclaim`)') + odin_note(qn['meta'])
        lines += ["_`exclaim` turns the answer's last `.` into `!`: no character is added, so a length head has nothing "
                  'to absorb. Same frozen protocol as above, this cue kind only._', '']
        S = pd.DataFrame(qn['testbed_summary']).set_index(['task', 'recipe'])['reversed']
        if ('relevance', 'odin') in S.index:
            lines += [f"- ODIN, reversed: {S[('relevance', 'odin')]:.3f} (relevance) and "
                      f"{S[('requested_item', 'odin')]:.3f} (requested item), against vanilla's "
                      f"{S[('relevance', 'vanilla')]:.3f} and {S[('requested_item', 'vanilla')]:.3f}: without a length "
                      "signal to absorb, its near-perfect showing on the other cue kinds does not carry over.", '']
    qf = load('quality_finetune.json')
    if qf and 'testbed_summary' in qf:
        lines += testbed(qf, '### Planted-cue testbed, fine-tuned MiniLM (a small CPU run)')
        c = qf['meta']['config']
        lines += [f"_Reduced scope, chosen to fit 2 CPU cores: {len(c['recipes'])} recipes ({', '.join(c['recipes'])}), "
                  f"cue kind(s) {', '.join(c['cues'])}, {c['steps']} steps of {c['batch']} pairs at {c['max_length']} "
                  'tokens, the testbed only. The full fine-tuned protocol (three cue kinds, real data, more steps) is a '
                  'GPU run and has not been made; the frozen-head results above remain the complete protocol._', '']
        lines += odin_note(qf['meta'])
    for name, fn in (('crome_ablation.json', ablation), ('fidelity.json', fidelity)):
        if load(name): lines += fn(load(name))
    if load('train_speed.json') or load('score_speed.json'): lines += speed(load('train_speed.json'), load('score_speed.json'))
    if len(lines) == 2: lines.append('No results yet: run `python benchmarks/quality.py`.')
    Path(a.out).write_text('\n'.join(lines) + '\n')
    print('wrote', a.out)


if __name__ == '__main__':
    main()
