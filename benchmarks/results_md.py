"""Write benchmarks/results/RESULTS.md, the README's results section, from the results JSON files: every number in
it is read from a file that records the commit, config, seeds and device it came from. Nothing here is typed by hand.

Usage: python benchmarks/results_md.py [--out benchmarks/results/RESULTS.md]"""
import argparse, ast, functools, json, math, re, statistics, subprocess
from pathlib import Path
import pandas as pd
from common import RESULTS, ROOT

NAMES = {'vanilla': 'vanilla', 'rrm': 'RRM', 'crome': 'Crome', 'odin': 'ODIN', 'mmd': 'MMD', 'length': 'longer wins',
         'cosine': 'cosine (untrained)'}


def load(name):
    "A results file, each provenance record in it (top level, `meta*` entries) marked with the file's name."
    p = Path(name) if Path(name).is_absolute() else RESULTS / name
    if not p.exists(): return None
    d = json.loads(p.read_text())
    metas = [v for k, v in d.items() if k.startswith('meta')] if isinstance(d, dict) else []
    for m in [d, *metas, *(x for v in metas if isinstance(v, list) for x in v)]:
        if isinstance(m, dict): m['_file'] = p.name  # meta_line names it: the command's --out may name another file
    return d


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


def rrm_note(meta) -> list[str]:
    "A line saying that a run's RRM trained at tie weight 1 where the ablation selected another on validation."
    c, abl = meta.get('config', {}), load('crome_ablation.json') or {}
    sel = abl.get('selected') if isinstance(abl.get('selected'), dict) else {}
    lam = c.get('rrm_lambda', c.get('rrm_lambda_tie', 1.0))
    want = {'rrm: lambda 2': 2.0, 'rrm: lambda 0.5': 0.5}.get(sel.get('rrm'), 1.0)
    if 'rrm' not in c.get('recipes', []) or lam == want: return []
    return [f"_RRM in this run trained at tie weight {lam:g}; the ablation below selected {want:g} on validation (RRM "
            'uses the same tie loss as Crome), so RRM is under-tuned here and its gaps to Crome are overstated._', '']


def ci(m, lo, hi) -> str: return f'{m:.3f} [{lo:.3f}, {hi:.3f}]'


def _imports(path: Path) -> set[str]:
    """Top-level names of the modules `path` imports, at module level or inside functions (`.x` inside crome:
    `crome.x`); in a file that imports by name (`importlib.import_module`, `__import__`), also every 'crome.x' string
    in it (crome.edits imports its edit families from such a tuple)."""
    out, nodes = set(), list(ast.walk(ast.parse(path.read_text())))
    for node in nodes:
        if isinstance(node, ast.Import): out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            mod = (('crome.' if node.level else '') + (node.module or '')).rstrip('.')
            out.update([f'{mod}.{a.name}' for a in node.names] if mod == 'crome' else [mod])
    if any(isinstance(n, (ast.Name, ast.Attribute)) and getattr(n, 'id', getattr(n, 'attr', None)) in
           ('import_module', '__import__') for n in nodes):
        out.update(n.value for n in nodes if isinstance(n, ast.Constant) and isinstance(n.value, str)
                   and re.fullmatch(r'crome(\.\w+)+', n.value))
    return out


@functools.lru_cache
def script_files(script: str) -> set[str] | None:
    """The crome/ files a benchmark script runs: its imports followed through the benchmarks/ (and tests/) helpers and
    crome's modules (at HEAD), as repository paths; None when the script is not in benchmarks/."""
    start = ROOT / 'benchmarks' / script
    if not start.exists(): return None
    todo, seen = [start], set()
    while todo:
        f = todo.pop()
        if f in seen or not f.exists(): continue
        seen.add(f)
        for m in _imports(f):
            parts = m.split('.')
            if parts[0] == 'crome': todo += [ROOT / 'crome' / f'{x}.py' for x in ['__init__', *parts[1:2]]]
            else: todo += [ROOT / d / f'{parts[0]}.py' for d in ('benchmarks', 'tests')]  # helpers on sys.path
    return {str(f.relative_to(ROOT)) for f in seen if f.parent.name == 'crome'}


def code_changed(commit: str, script: str = '?') -> list[str] | None:
    """The crome/ files that differ between `commit` and HEAD (empty: none), None when git cannot tell; limited to the
    files `script` runs when it is a benchmarks/ script (a change elsewhere cannot have moved its numbers)."""
    if not commit or commit == '?': return None
    try: r = subprocess.run(['git', 'diff', '--name-only', commit, 'HEAD', '--', 'crome'], cwd=ROOT,
                            capture_output=True, text=True)
    except OSError: return None
    if r.returncode != 0: return None
    used = script_files(script)
    return [f for f in r.stdout.split() if used is None or f in used]


def changed_note(commit: str, files: list[str] | None) -> str:
    "What `meta_line` says about code changes since `commit`: the files that differ (at most 3 named), or nothing."
    if files is None: return ' (whether crome/ changed since cannot be told: commit unknown to git)'
    if not files: return ''
    files = sorted(files, key=lambda f: f.endswith('_modidx.py'))  # nbdev's symbol index says least: named last
    names = ', '.join(f'`{f}`' for f in files[:3]) + (f' and {len(files) - 3} more' if len(files) > 3 else '')
    verb = 'differs' if len(files) == 1 else 'differ'
    return (f' (code changed since: {names}, which it runs, {verb} between `{commit[:10]}` and HEAD when this file '
            'was written)')


SUMMARY_ONLY = {'crome/stats.py'}  # what `--resummarise` recomputes from stored verdicts: intervals and verdicts only


def local_paths(cmd: str) -> str:
    "A command as recorded, with this machine's absolute paths cut to their file names."
    return re.sub(r'(?<![\w.])/\S*/(\S+)', r'\1', cmd)


def recomputed_note(rs: dict, script: str, tail: str = '') -> str:
    "The line under a results file whose intervals `--resummarise` recomputed from its stored per-pair verdicts."
    return (f"_Intervals recomputed from the run's stored per-pair verdicts at commit `{rs['commit'][:10]}` "
            f"(`{script} {local_paths(rs['command'])}`){tail}._")


def meta_line(meta, script: str = '?', recomputed: str | None = None) -> str:
    """One provenance line for any results file: command, commit, whether the tree was dirty (or that the file does
    not say), seeds, device, wall time, and whether crome/ changed after that commit (results from different commits
    stand side by side here). `recomputed`: the commit at which its intervals were recomputed from its stored
    verdicts (`--resummarise`); a change to the interval code (`SUMMARY_ONLY`) before it is then not a change."""
    commit = meta.get('commit') or meta.get('git_commit') or '?'
    dirty = {True: ' (uncommitted changes)', False: ''}.get(meta.get('dirty'), ' (dirty flag not recorded)')
    secs = next((meta[k] for k in ('seconds', 'wall_s', 'wall_seconds') if meta.get(k) is not None), None)
    took = 'wall time not recorded' if secs is None else f'{secs:.0f} s' if secs < 120 else f'{secs / 60:.0f} min'
    seeds = meta.get('seeds')
    first = (meta.get('command') or '').split(' ')[0]
    target = first if first.endswith('.py') else script
    files = code_changed(commit, target)
    if files and recomputed:
        since = code_changed(recomputed, target)
        files = [f for f in files if f not in SUMMARY_ONLY or since is None or f in since]
    note = changed_note(commit, files)
    cmd = local_paths(meta.get('command') or script)
    read = f"`results/{meta['_file']}`, written by " if meta.get('_file') else ''
    return (f"_{read}`{cmd}` at commit `{commit[:10]}`{dirty}{note}; seeds "
            f"{', '.join(map(str, seeds)) if seeds else 'not recorded'}; {meta.get('device', 'device not recorded')}; "
            f"{took}._")


def goal_threshold(goal: str) -> float:
    "The threshold of a testbed goal from its wording (files written before goals stored theirs)."
    m = re.search(r'within (\d+\.\d+)', goal) or re.search(r'\+ (\d+\.\d+)', goal)
    if not m: raise ValueError(f'no threshold in goal {goal!r}')
    return -float(m.group(1)) if 'within' in goal else float(m.group(1))


def goal_text(status: str) -> str:
    return {'met': 'met', 'not met': '**not met**', 'undecided': 'undecided (inside the noise)'}[status]


def md(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    rows = ['| ' + ' | '.join(cols) + ' |', '|' + '---|' * len(cols)]
    rows += ['| ' + ' | '.join(str(v) for v in r) + ' |' for r in df.itertuples(index=False)]
    return '\n'.join(rows)


KINDS = {'relevance': 'contextual attribute', 'requested_item': 'within-prompt attribute',
         'excluded_item': 'within-prompt attribute; prompt-answer similarity points at the wrong answer'}


def testbed(q, title: str = '### Planted-cue testbed', exclaim_where: str = 'below') -> list[str]:
    S = pd.DataFrame(q['testbed_summary'])
    cfg = q['meta'].get('config', {})
    rs = q.get('resummarised') or {}
    redo = ([recomputed_note(rs, 'quality.py', ", with the pairs a seed's cue kinds share resampled once"), '']
            if 'testbed' in rs.get('parts', []) else [])
    added = [f"_Task {', '.join(m['tasks'])} added later (`quality.py --add-tasks`, same settings and seeds):_ "
             + meta_line(m, 'quality.py') for m in q.get('meta_testbed_added', [])]
    out = [title, '', meta_line(q['meta'], 'quality.py', rs['commit'] if redo else None), ''] + sum(
           ([x, ''] for x in added), []) + redo + [
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
        out += [f'**{task.replace("_", " ")}** ({KINDS.get(task, "within-prompt attribute")})', '', md(t), '']
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
                f'accuracy is the measure of that). The length-neutral `exclaim` section {exclaim_where} separates ODIN '
                'from a real fix._']
    G = pd.DataFrame(q['testbed_goals'])
    if 'threshold' not in G: G['threshold'] = G.goal.map(goal_threshold)
    G['status'] = [goal_status(r.low, r.high, r.threshold) for r in G.itertuples()]  # the rule, whatever the file says
    out += ['', 'Goals of the project, as measured: a goal is met only when the 95% interval of the difference clears '
            'its threshold, not met when the interval lies entirely on the wrong side, otherwise undecided (the '
            'threshold is inside the noise; a point estimate past it is not enough).', '']
    out += [f"- {r.goal}: {goal_text(r.status)} ({r.diff:+.3f} [{r.low:+.3f}, {r.high:+.3f}])"
            for r in G.itertuples()]
    return out + ['']


def testbed_baselines(b, q: dict | None = None) -> list[str]:
    """Two untrained rules on the testbed's test pairs, and each trained recipe against the cosine rule, pair by pair.
    Where the cosine rule is below chance (`excluded_item`), beating it is not enough: a recipe shows learning there
    only when its clean interval is also above 0.5 (read from part A's summary `q`)."""
    S, V = pd.DataFrame(b['summary']), pd.DataFrame(b['versus_cosine'])
    out = ['**Untrained baselines on the same test pairs**', '', meta_line(b, 'testbed_baselines.py'), '',
           "The testbed's test pairs scored by two rules that learn nothing: *longer wins* (the longer answer) and "
           "*cosine* (the answer whose frozen MiniLM embedding is nearer the prompt's).", '']
    t = pd.DataFrame({'task': S.task.str.replace('_', ' '), 'rule': [NAMES.get(r, r) for r in S.rule],
                      'clean': [ci(*x) for x in zip(S['clean'], S.clean_low, S.clean_high)],
                      'reversed': [ci(*x) for x in zip(S['reversed'], S.reversed_low, S.reversed_high)]})
    out += [md(t), '']
    if not len(V): return out + ['_No part A results with the same settings and seeds to pair with._', '']
    out += [f"Each trained recipe minus the cosine rule, on the same pairs (part A's results, commit "
            f"`{(b['config'].get('quality_commit') or '?')[:10]}`):", '']
    for col in ('verdict', 'note', 'low'):  # an unpaired row has only a note, a paired one no note
        if col not in V: V[col] = None
    out += [f"- {r.task}, {r.split}: {r.verdict if isinstance(r.verdict, str) else f'{r.recipe}: {r.note}'}"
            for r in V.itertuples()]
    V = V[V.verdict.map(lambda x: isinstance(x, str))]
    if not len(V): return out + ['', "_No trained recipe is paired with the cosine rule (other units or pair counts "
                                 "than part A's results): nothing to compare._", '']
    cos = {r.task: r for r in S[S.rule == 'cosine'].itertuples()}
    low = {(r.task, r.recipe): r.clean_low for r in pd.DataFrame((q or {}).get('testbed_summary', [])).itertuples()}
    for task, g in V[V.split == 'clean'].groupby('task', sort=False):
        name, wrong = task.replace('_', ' '), task in cos and cos[task].clean_high < 0.5
        above = [NAMES.get(r, r) for r in g[g['low'] > 0].recipe if not wrong or low.get((task, r), 0) > 0.5]
        if wrong:
            out += ['', f"_{name}: the cosine rule is below chance here ({cos[task].clean:.3f} clean: prompt-answer "
                    'similarity points at the wrong answer), so a recipe shows learning only with its clean interval '
                    'above 0.5 as well: ' + (f"{', '.join(above)}._" if above else 'none does._')]
            continue
        out += ['', f"_{name}: " + (
            f"{', '.join(above)} significantly above the untrained cosine rule on clean pairs._" if above else
            'no trained recipe is above the untrained cosine rule on clean pairs, so clean accuracy here does not '
            'show that any recipe learned the task beyond embedding similarity; what this task measures is how much '
            'a model leans on the cue (reversed against clean, paired between recipes)._')]
    return out + ['']


def goal_status(low: float, high: float, threshold: float) -> str:
    "As quality.goal_status (a goal `difference >= threshold`), kept here so that this script imports no torch."
    return 'met' if low >= threshold else 'not met' if high < threshold else 'undecided'


T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}


def ratio_interval(num: list, den: list) -> tuple[float, float, float] | None:
    """(geometric mean, low, high) of the per-round ratios num / den with a 95% t-interval on the log scale; rounds
    alternate the contenders, so round i of each pairs. Past 10 degrees of freedom the t quantile of 10 is kept (a
    little wide). None with fewer than 2 rounds. Within-run noise only: the machine's drift between runs is not
    in it."""
    logs = [math.log(a / b) for a, b in zip(num, den)]
    if len(logs) < 2: return None
    m, se = statistics.mean(logs), statistics.stdev(logs) / math.sqrt(len(logs))
    t = T975[min(len(logs) - 1, 10)]
    return math.exp(m), math.exp(m - t * se), math.exp(m + t * se)


def ratio_text(num: list, den: list) -> str:
    """A ratio of paired rounds for the text: 'g.ggx [low, high]' (`ratio_interval`), saying so where the interval
    includes 1 (then the ratio ranks neither side); with one round, its ratio and that it has no interval."""
    ci = ratio_interval(num, den)
    if ci is None: return f'{num[0] / den[0]:.2f}x (one round: no interval)'
    return f'{ci[0]:.2f}x [{ci[1]:.2f}, {ci[2]:.2f}]' + (' (interval includes 1: no ranking)' if ci[1] <= 1 <= ci[2]
                                                         else '')


def round_values(run: dict, key: str = 'pairs_per_s') -> list:
    "A run's per-round values of `key`, by round (the rounds of two runs pair by their index)."
    return [x[key] for x in sorted(run['repeats'], key=lambda x: x['round'])]


def same_batch(pipe: str) -> bool:
    "Whether a score_speed.py contender name is the pipeline at the run's batch (`pipeline_bs{batch}`, not batch 1)."
    return re.fullmatch(r'pipeline_bs\d+', pipe) is not None and pipe != 'pipeline_bs1'


def goal_of(v: dict, pipe: str, goal: float = 2.0) -> tuple[str, tuple | None]:
    """('met' | 'not met' | 'undecided', the per-round ratio interval or None) for crome >= `goal` x the pipeline
    contender `pipe`: by the 95% interval of the per-round ratios; a file without rounds, by the ratio of medians."""
    w = v.get('seconds_all_reps', {})
    ci = ratio_interval(w[pipe], w['crome']) if pipe in w and 'crome' in w else None
    if ci is not None: return goal_status(ci[1], ci[2], goal), ci
    return ('met' if v['speedup_same_batch' if same_batch(pipe) else 'speedup_vs_best_pipeline'] >= goal
            else 'not met'), None


def speed_goal(v: dict, pipe: str, goal: float = 2.0, note: str = '') -> str:
    """'met', 'not met' or 'undecided' for crome >= `goal` x the pipeline contender `pipe`, by the 95% interval of the
    per-round ratios (as the quality goals), with the interval and, unless met, `note` in parentheses; a file without
    rounds: by the ratio of medians."""
    status, ci = goal_of(v, pipe, goal)
    why = [] if ci is None else [f'{ci[0]:.2f}x [{ci[1]:.2f}, {ci[2]:.2f}]']
    if note and status != 'met': why.append(note)
    return (status if status == 'met' else f'**{status}**') + (f" ({'; '.join(why)})" if why else '')


def share_needed(v: dict, pipe_key: str, goal: float = 2.0) -> float | None:
    """The share of the matmul peak crome's executed FLOPs would need for `goal`x the same-batch pipeline (contender
    `pipe_key`, e.g. 'pipeline_bs32'), at the pipeline's measured share: speedup = ceiling x crome share / pipeline
    share. None where the file lacks either."""
    pipe = v.get('share_of_peak', {}).get(pipe_key, {}).get('executed')
    ceiling = v.get('speedup_bound_equal_efficiency')
    return None if pipe is None or not ceiling else goal * pipe / ceiling


POOLED = 'All pairs (pooled)'  # older results files call it 'Avg'; it is not RewardBench's mean of sections


def _dropped_note(q) -> list[str]:
    "What `quality.py --resummarise --drop-subset` removed from this run after it was scored, if anything."
    rs = q.get('resummarised') or {}
    out = []
    for d in rs.get('dropped', []):
        why = (' They pair a GSM8K solution with another question\'s solution, the construction of the GSM8K training '
               "pairs and of RRM's augmentation, so one generator family would both train and test "
               '(evaluation hygiene: what trains never tests).' if d['subset'] == 'gsm8k-prompt-match' else '')
        rob = d.get('robustness')
        rob = (f" Robustness pairs left: {rob['pairs_after'][0]} of {rob['pairs_before'][0]}." if isinstance(rob, dict)
               else f' Robustness: {rob}.' if rob else '')
        out += [f"_Subset `{d['subset']}` ({d['test_pairs']} of the {d['test_pairs_before']} test pairs) was removed "
                f"from this run after it was scored (`quality.py {local_paths(rs['command'])}` at commit `{rs['commit'][:10]}`, no "
                f"retraining).{why} Every real-data number below is recomputed from the stored per-pair verdicts "
                f"without it; check: {'; '.join(d.get('checks', []))}.{rob}_", '']
    return out


def _training_lines(q) -> list[str]:
    "Per recipe: augmented rows made and kept, rows trained on (means over seeds), and the data-building warnings."
    out = []
    if 'real_training' in q:
        T = pd.DataFrame(q['real_training'])
        T = T[T.role == 'scored'] if 'role' in T else T
        g = T.groupby('recipe', sort=False).agg(seeds=('seed', 'nunique'), made=('n_augmented', 'mean'),
                                                kept=('n_kept', 'mean'), trained=('n_train', 'mean'))
        kinds = T.groupby('recipe', sort=False).rows_by_kind.agg(
            lambda x: ', '.join(f'{k} {v:.0f}' for k, v in pd.DataFrame(list(x)).fillna(0).mean().items()))
        out += ['Training rows per recipe (means over seeds): augmented rows made, kept by the filter, and the rows '
                'trained on by kind:', '',
                md(pd.DataFrame({'recipe': [NAMES.get(r, r) for r in g.index], 'seeds': g.seeds,
                                 'augmented made': g.made.round(0).astype(int), 'kept': g.kept.round(0).astype(int),
                                 'rows trained on': g.trained.round(0).astype(int), 'by kind': kinds[g.index]})), '']
    else:
        out += ['_Augmented rows made and kept per recipe and seed, and the rows trained on: not recorded in this run '
                '(quality.py records them as `real_training` from now on)._', '']
    if 'real_warnings' in q:
        W = q['real_warnings']
        out += (['Warnings while building the data and the training rows (count, where):', '']
                + [f"- x{w['count']} ({w['where']}): {w['message']}" for w in W] if W
                else ['No warnings while building the data and the training rows.']) + ['']
    else:
        reb = [w for d in (q.get('resummarised') or {}).get('dropped', []) for w in d.get('warnings_rebuilding', [])]
        out += ['_Warnings of the data-building steps (pairs left out): not recorded in this run'
                + (f"; rebuilding its split gave: {'; '.join(w['message'] for w in reb)}" if reb else '') + '._', '']
    return out


def _robustness_goal(R) -> list[str]:
    """Goal "Crome's drop at most half of vanilla's", judged on the paired difference of the drops: met only when its
    interval lies at or below -(vanilla's drop)/2, not met when it lies above, else undecided."""
    d = R.set_index('model')
    if not {'crome', 'vanilla'} <= set(d.index): return []
    v, c = d.loc['vanilla'], d.loc['crome']
    thr = -v['drop'] / 2
    if pd.isna(c.get('vs_baseline_low')):
        status, diff = 'undecided', ' (no paired difference recorded)'
    else:
        status = 'met' if c.vs_baseline_high <= thr else 'not met' if c.vs_baseline_low > thr else 'undecided'
        diff = f': paired difference of the drops {c.verdict}'
    weak = (f" Vanilla's own drop is not significantly above 0 ([{v.drop_low:.3f}, {v.drop_high:.3f}]), so there is "
            'little to halve.' if v.drop_low <= 0 else '')
    return [f"Goal \"Crome's drop at most half of vanilla's\" (Crome's drop {c['drop']:.3f}, vanilla's {v['drop']:.3f}; "
            f"judged on the paired difference, which must lie at or below {thr:+.3f}): {goal_text(status)}{diff}."
            + weak, '']


def real(q) -> list[str]:
    P = pd.DataFrame(q['real_power']).replace({'section': {'Avg': POOLED}})
    sizes = q['real_sizes']
    shared = q.get('real_shared_answer_texts')
    tt = (shared or {}).get('train/test')
    rs = q.get('resummarised') or {}
    redo = 'real' in rs.get('parts', [])
    out = ['### Real data', '', meta_line(q.get('meta_real', q['meta']), 'quality.py', rs['commit'] if redo else None),
           ''] + ([recomputed_note(rs, 'quality.py'), ''] if redo and not rs.get('dropped') else []) + _dropped_note(q) + [
           f"{sizes['train']} training / {sizes['validation']} validation / {sizes['test']} test pairs, split by prompt"
           + (f"; answer texts in both training and test: {len(tt)}, short stock replies "
              f"({', '.join(repr(t) for t in tt)})" if tt is not None else '')
           + '. Accuracy per section with 95% intervals; the two untrained baselines decide whether a section can '
           'rank recipes at all.', '']
    piv = {}
    for r in P.itertuples():
        piv.setdefault(r.section, {})[NAMES.get(r.model, r.model)] = ci(r.accuracy, r.low, r.high)
    models = [NAMES.get(m, m) for m in P.model.unique()]
    t = pd.DataFrame([{'section': s, **{m: v.get(m, '') for m in models}} for s, v in piv.items()])
    out += [md(t), '', f'_{POOLED}: every test pair counted once, so sections weigh by their size; it is not '
            "RewardBench's Avg (the mean of the section accuracies)._", '']
    power = P.groupby('section', sort=False).has_power.first()
    for s, hp in power.items():
        if s == POOLED and 'vs_best_baseline' in P:
            out.append(_pooled_power_line(P[P.section == s], hp))
        elif hp:
            above = ', '.join(NAMES.get(m, m) for m in P[(P.section == s) & P.above_baselines].model)
            out.append(f'- {s}: {above} significantly above both untrained baselines: this section can rank recipes.')
        else:
            out.append(f'- {s}: no recipe is significantly above both untrained baselines: **this section cannot rank '
                       'recipes** at this model size.')
    D = pd.DataFrame(q['real_differences']).replace({'section': {'Avg': POOLED}})
    out += ['', 'Paired differences (where a section cannot rank recipes, a significant difference between two recipes '
            'is still no ranking: neither beats both untrained baselines there):', '']
    out += [f"- {r.section}{'' if power.get(r.section, False) else ' (cannot rank recipes)'}: {r.verdict}"
            for r in D.itertuples()]
    sec = [s for s in power.index if s != POOLED]
    if not any(power[s] for s in sec) and power.get(POOLED, False):
        out += ['', '_Only the pooled average has power, and it mixes sections of different kinds; per section, no '
                'recipe beats both baselines, so these data cannot rank recipes section by section._']
    out += [''] + _training_lines(q)
    R = pd.DataFrame(q['real_robustness_drops'])
    R = R[R.side == 'both']
    rp = q.get('real_robustness_pairs')
    n_rob = f' on {len(rp[0]["pair"])} test pairs' if rp else ''
    out += ['Robustness suite (eval-role meaning-preserving transformations on both answers' + n_rob + '; accuracy '
            'drop, micro-averaged, lower is better; ' + ('95% interval over seeds and test pairs, a pair\'s '
                                                          'transformations resampled together' if rp
                                                          else 'interval over seeds') + '):', '',
            md(pd.DataFrame({'model': [NAMES.get(m, m) for m in R.model], 'clean': R['clean'].round(3),
                             'transformed': R.accuracy.round(3), 'drop': [ci(*x) for x in zip(R['drop'], R.drop_low,
                                                                                              R.drop_high)]})), '']
    out += _robustness_goal(R)
    B = pd.DataFrame(q['real_bon'])
    b, bon_diffs = _bon_table(B)
    ref = B.groupby('n')[['random_acc', 'oracle_acc']].mean().round(3)
    b.loc['random pick'] = ref.random_acc; b.loc['best possible (pass@N)'] = ref.oracle_acc
    b.index = [NAMES.get(i, i) for i in b.index]
    b.columns = [f'N={c}' for c in b.columns]
    n_bon = q.get('meta_real', q['meta']).get('config', {}).get('n_bon')
    left = (f' (of the first {n_bon}: {n_bon - q["real_n_bon_pools"]} have no arithmetic slip to make and are left '
            'out)' if n_bon and n_bon > q['real_n_bon_pools'] else '')
    out += [f"Best-of-N on {q['real_n_bon_pools']} GSM8K test questions{left} (8 candidates: 2 right, 6 with an "
            'arithmetic slip; decorations drawn alike for both), accuracy of the pick'
            + (' with a 95% interval over seeds and questions:' if bon_diffs else
               ' (mean over seeds; this file stores no per-question picks, so no intervals: rerun quality.py):'), '',
            md(b.reset_index(names='model')), ''] + bon_diffs
    return out


def _pooled_power_line(G: pd.DataFrame, has_power: bool) -> str:
    "The pooled section's power: above both baselines pooled AND above the better baseline of each section."
    best = G.best_baseline.dropna().iloc[0]
    if has_power:
        above = ', '.join(NAMES.get(m, m) for m in G[G.above_baselines].model)
        return (f'- {POOLED}: {above} significantly above both untrained baselines and above the better of them in '
                f'each section ({best:.3f}): this section can rank recipes.')
    cols = {'vs_length_low', 'vs_cosine_low'}
    pooled_only = G[(G.vs_length_low > 0) & (G.vs_cosine_low > 0)].model if cols <= set(G) else []
    why = (f"; {' and '.join(NAMES.get(m, m) for m in pooled_only)} above each baseline pooled only because each "
           'baseline fails a different section' if len(pooled_only) else '')
    return (f'- {POOLED}: no recipe is significantly above the better untrained baseline of each section (accuracy '
            f'{best:.3f}{why}): **this section cannot rank recipes** at this model size.')


def _bon_table(B: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    "Best-of-N accuracy per (model, N), with 95% intervals and Crome's paired differences where picks are stored."
    if 'correct' not in B:
        return B.groupby(['model', 'n']).accuracy.mean().unstack('n').round(3).astype(object), []
    from crome.stats import bootstrap_ci, paired_diff_ci, verdict
    arrs = {k: [list(r) for r in g.sort_values('train_seed').correct] for k, g in B.groupby(['model', 'n'], sort=False)}
    cis = {k: bootstrap_ci(v) for k, v in arrs.items()}  # once: the table and the random-pick line read them
    t = pd.DataFrame([{'model': m, 'n': n, 'acc': ci(*c)} for (m, n), c in cis.items()])
    t = t.pivot(index='model', columns='n', values='acc').reindex(B.model.unique()).astype(object)
    top = int(B.n.max())
    lines = [f"- N={top}: {verdict(paired_diff_ci(arrs[('crome', top)], arrs[(o, top)]), f'Crome - {NAMES.get(o, o)}')}"
             for o in B.model.unique() if o != 'crome' and ('crome', top) in arrs]
    rand = float(B[B.n == top].random_acc.mean())
    above = [NAMES.get(m, m) for (m, n), c in cis.items() if n == top and c[1] > rand]
    lines = [f"- At N={top}, " + (f"{', '.join(above)} significantly above the random pick ({rand:.3f})." if above else
                                  f'no model is significantly above the random pick ({rand:.3f}): these pools cannot '
                                  'rank recipes at this model size, whatever the differences below.')] + lines
    return t, ['Paired differences at the largest N (same questions, seeds and candidate orders):', ''] + lines + ['']


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
    return ['### Counterfactual fidelity of the offline causal edits', '', meta_line(f, 'fidelity.py'), '',
            f"Demo n={f['config']['n']} per cue kind.", '',
            'Kept causal pairs per demo set, the share that are upgrades of the rejected answer, and how often a kept '
            'pair also changed a spurious attribute. The verifier rejects a rewrite that its detectors flag, so its '
            'own rate is 0 by construction; the independent check is the planted cue (`crome.demo.has_cue`), which no '
            'verifier code reads.', '', md(t), '']


TRAIN_PAIRS = {'off': ('crome:off', 'trl:off', 'without length grouping'),
               'on': ('crome:on', 'trl:on', 'with it (both trainers grouped)'),
               'on, padded forward': ('crome:on:padded', 'trl:on', "with crome's packed forward off (the like-for-like "
                                                                   'padded comparison)')}


def train_ratios(t: dict, reps: int) -> str:
    """crome / TRL pairs/s of train_speed.json: with rounds, per round paired (`ratio_text`: the geometric mean of the
    rounds' ratios and its 95% interval, as score_speed's); a file without rounds: the ratio of medians."""
    R, r = t['runs'], t['ratios_crome_over_trl']
    keys = [k for k in TRAIN_PAIRS if k in r]
    if reps >= 2 and all('repeats' in R[c] and 'repeats' in R[b] for c, b, _ in (TRAIN_PAIRS[k] for k in keys)):
        return (f"crome / TRL pairs/s, the {reps} rounds paired (geometric mean of the per-round ratios with its 95% "
                'interval, within this run; where the interval includes 1 the ratio ranks neither trainer): '
                + '; '.join(f'{TRAIN_PAIRS[k][2]} '
                            + ratio_text(round_values(R[TRAIN_PAIRS[k][0]]), round_values(R[TRAIN_PAIRS[k][1]]))
                            for k in keys))
    return ('crome / TRL pairs/s (ratio of medians, no interval: this file has no rounds): '
            + ', '.join(f"{r[k]['pairs_per_s']:.2f}x {TRAIN_PAIRS[k][2]}" for k in keys))


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
        reps = runs['repeats'].dropna().map(len).min() if 'repeats' in runs else 0
        timing = (f'the median of {reps} alternating repeats per configuration after an untimed warm-up (every '
                  'repeat is in the JSON)' if reps else 'one timed run per configuration and no warm-up run: the first '
                  'configuration absorbs the process warm-up (this file predates repeats; rerun train_speed.py)')
        out += ['Fine-tuning MiniLM, crome vs TRL\'s `RewardTrainer` like for like:', '', meta_line(t, 'train_speed.py'),
                '', f"{t['data']}; load average {t['load_at_start']['loadavg_1_5_15'][0]} at the start; {timing}. "
                "`on`/`off`: length-grouped sampling; crome runs its packed forward (no work on padding, same "
                "gradients) unless marked `padded`:", '', md(tt), '',
                train_ratios(t, reps)
                + '. Held-out accuracy is at chance at this size and is not compared. Compute share counts the plain '
                'forward-and-backward FLOPs of the non-pad tokens against a matmul probe run in the same process '
                '(goal 60%).', '']
    if s:
        B = f"pipeline_bs{s['config']['batch']}"  # score_speed.py's name of the pipeline at its --batch
        rows = [dict(texts=k, **{'crome texts/s': round(v['texts_per_s']['crome'], 1),
                                 'pipeline, same batch': round(v['texts_per_s'][B], 1),
                                 'speedup, same batch': f"{v['speedup_same_batch']:.2f}x",
                                 **({'without oneDNN kernels, same batch': f"{v['speedup_same_batch_no_onednn']:.2f}x"}
                                    if 'speedup_same_batch_no_onednn' in v else {}),
                                 'compiled, same batch': (f"{v['speedup_same_batch_compiled']:.2f}x"
                                                          if 'speedup_same_batch_compiled' in v else 'n/a'),
                                 'speedup vs batch 1': f"{v['speedup_vs_bs1']:.2f}x",
                                 **({'speedup vs sorted pipeline': f"{v['speedup_vs_sorted_pipeline']:.2f}x",
                                     'speedup vs best pipeline': f"{v['speedup_vs_best_pipeline']:.2f}x"}
                                    if 'speedup_vs_best_pipeline' in v else {}),
                                 'max abs score diff': f"{v['max_abs_diff_vs_pipeline_same_batch']:.0e}",
                                 'share of matmul peak': f"{v.get('share_of_peak_crome', float('nan')):.0%}",
                                 'pipeline share of peak': (f"{v['share_of_peak'][B]['executed']:.0%}"
                                                            if B in v.get('share_of_peak', {}) else 'n/a'),
                                 'float32 ceiling': (f"{v['speedup_bound_equal_efficiency']:.2f}x"
                                                     if 'speedup_bound_equal_efficiency' in v else 'n/a'),
                                 **({'bf16 weights, same batch (other scores)': f"{v['speedup_same_batch_bf16']:.2f}x"}
                                    if 'speedup_same_batch_bf16' in v else {})})
                for k, v in s['distributions'].items()]
        bf = {k: v for k, v in s['distributions'].items() if 'speedup_same_batch_bf16' in v}
        need = {k: share_needed(v, B) for k, v in s['distributions'].items()}
        met = {k: speed_goal(v, B, note='' if need[k] is None else f"2x needs crome at {need[k]:.0%} of "
                             f"the matmul peak, now {v['share_of_peak_crome']:.0%}")
               for k, v in s['distributions'].items()}
        rounds = min((len(v.get('seconds_all_reps', {}).get('crome', [])) for v in s['distributions'].values()),
                     default=0)
        best = {k: v for k, v in s['distributions'].items() if 'speedup_vs_best_pipeline' in v}
        best_note = (' Much of the same-batch speedup on mixed lengths is input order: the pipeline batches texts as '
                     'given, crome sorts them by length. *Sorted pipeline*: the same pipeline fed the texts sorted by '
                     'length (a user can do that); *best pipeline*: the fastest of batch 1, batch '
                     f"{s['config']['batch']} and sorted batch {s['config']['batch']}, per distribution ("
                     + ', '.join(f"{k}: {v['best_pipeline'].replace('pipeline_', '')}" for k, v in best.items())
                     + '). Against the best pipeline, 2x is '
                     + '; '.join(f"{k}: {speed_goal(v, v['best_pipeline'])}" for k, v in best.items()) + '.'
                     if best else
                     ' (This file predates the sorted-pipeline contender: the same-batch pipeline batches texts in '
                     'their given order, crome sorts them, and much of the mixed-length speedup is that order.)')
        out += [f"Scoring vs a transformers `pipeline` (batch {s['config']['batch']}):", '', meta_line(s, 'score_speed.py'),
                '', md(pd.DataFrame(rows)), '',
                'Goal "2x the pipeline at the same batch, identical scores"'
                + (f' (by the 95% interval of the {rounds} rounds\' speedups, geometric mean [low, high], as the '
                   'quality goals: met when the interval clears 2x, not met when it lies below, else undecided)'
                   if rounds >= 2 else '') + ': '
                + '; '.join(f'{k}: {m}' for k, m in met.items()) + '.'
                + (' Speedup = float32 ceiling x crome\'s share / the pipeline\'s share, so 2x needs crome at 2 x the '
                   "pipeline's share / the ceiling." if any(v is not None for v in need.values()) else '') + best_note
                + ' *Float32 ceiling*: the FLOPs the pipeline executes (its batches padded to their longest member) '
                "over the FLOPs crome executes, i.e. the speedup exact float32 scoring reaches when both run their matrix "
                "products equally fast (above it, crome's kernels ran faster than the pipeline's: oneDNN's prepacked "
                "products where the JSON has a `crome_no_onednn` contender, and attention that skips the masked padded "
                'grid); well past it needs other arithmetic (bf16, int8) and so other scores. Compute '
                'share is of ' + probe_note(s, 'distributions') + ' (goal 60%).'
                + (' *bf16 weights* (bfloat16 weights and activations on bf16 matrix units, float32 scores out) is that '
                   'other arithmetic, shown for the trade-off and not counted for the goal: max |score difference| to '
                   'the pipeline ' + ', '.join(f"{v['max_abs_diff_vs_pipeline_bf16']:.0e}" for v in bf.values())
                   + ' (score std ' + ', '.join(f"{v['score_std']:.2f}" for v in bf.values()) + '); text pairs '
                   'whose score order it keeps: ' + ', '.join(f"{v['pair_order_agreement_bf16']:.1%}" for v in bf.values())
                   + ' (float32: ' + ', '.join(f"{v['pair_order_agreement_float32']:.1%}" for v in bf.values()) + ').'
                   if bf else f" bf16 weights: {s.get('bf16', 'not measured')}."), '']
    return out


def other_cpu_scoring(s2: dict, s: dict | None) -> list[str]:
    """The same scoring benchmark on a second CPU (`score_speed_amd.json`, an earlier run): per distribution the
    same-batch speedup and the 2x goal by its rounds' interval, crome's and the pipeline's share of that machine's matmul peak, the float32
    ceiling and the bf16 trade-off, so the goal's verdict is seen not to hang on one machine."""
    B = f"pipeline_bs{s2['config']['batch']}"
    rows = [{'texts': k, 'speedup, same batch': speed_goal(v, B).replace('**', ''),
             'share of matmul peak': f"{v['share_of_peak_crome']:.0%}",
             'pipeline share of peak': f"{v['share_of_peak'][B]['executed']:.0%}",
             'float32 ceiling': f"{v['speedup_bound_equal_efficiency']:.2f}x",
             'compiled, same batch': f"{v['speedup_same_batch_compiled']:.2f}x",
             'bf16 weights (other scores)': (f"{v['speedup_same_batch_bf16']:.2f}x, order kept "
                                             f"{v['pair_order_agreement_bf16']:.1%}" if 'speedup_same_batch_bf16' in v
                                             else 'n/a')}
            for k, v in s2['distributions'].items()]
    same = s is not None and s['config'] | {'out': ''} == s2['config'] | {'out': ''}
    verdict = lambda d, k: goal_of(d['distributions'][k], B)[0]
    both = [k for k in s2['distributions'] if s is not None and k in s['distributions']]
    differ = [f'{k}: {verdict(s, k)} there, {verdict(s2, k)} here' for k in both if verdict(s, k) != verdict(s2, k)]
    return ['The same scoring benchmark on a second CPU:', '', meta_line(s2, 'score_speed.py'), '',
            md(pd.DataFrame(rows)), '',
            ('Same settings as the table above. ' if same else 'Settings differ from the table above. ')
            + ('The 2x verdicts differ from the first CPU\'s (' + '; '.join(differ) + ').' if differ else
               'The 2x verdict of every distribution is the same as on the first CPU.')
            + " The speedups themselves differ (crome's and the pipeline's shares of the peak move with the CPU), so "
            'each figure holds for the machine that measured it.', '']


def probe_note(res: dict, runs: str) -> str:
    "What the compute share of a CPU speed file is measured against: its best matrix-product probe, and which kernels."
    probes = [res['peak_probe_start'], res['peak_probe_end']] + [r['peak_probe_after'] for r in res[runs].values()]
    kernels = {}
    for p in probes:
        for k, v in p.get('flops_per_s_by_kernel', {'torch.mm': p['flops_per_s']}).items():
            kernels[k] = max(kernels.get(k, 0.0), v)
    if len(kernels) == 1: return f"a torch.mm probe run in the same process ({kernels['torch.mm'] / 1e9:.0f} GFLOP/s)"
    best = max(kernels, key=kernels.get)
    return ('the best matrix-product probe run in the same process, ' + best + f' at {kernels[best] / 1e9:.0f} GFLOP/s ('
            + ', '.join(f'{k} {v / 1e9:.0f}' for k, v in kernels.items() if k != best) + '); the fastest kernel '
            "sets the peak, so running crome on the faster kernel does not inflate its share")


def _vs(v: dict, pipe: str) -> str:
    "crome's speedup over a scoring contender of a device_speed.py result: per round with its interval, else one ratio."
    w = v.get('seconds_all_rounds')
    if w and pipe in w: return ratio_text(w[pipe], w['crome'])
    return f"{v['speedup_same_batch']:.2f}x"


SINGLE_SCORING = ('a single timed round (after one untimed), crome sorting the texts by length while the '
                  'pipeline takes them in the given order, and no noise estimate: single measurements of unlike input '
                  'orders, which do not rank crome against the pipeline')


def scoring_variants(name: str, d: dict) -> list[str]:
    "A `device_speed.py --scoring-only` file: crome vs the pipeline per length bucket and batch, tokenizer threads off/on."
    rounds = all('seconds_all_rounds' in v for v in d['scoring_variants'])
    rows = [{'texts': f"{v.get('texts_kind', 'first pairs, all lengths')}: {v['texts']}", 'batch': v['batch'],
             'tokenizer threads': 'on' if v['tokenizers_parallelism'] else 'off',
             'crome texts/s': round(v['texts_per_s']['crome']), 'pipeline texts/s': round(v['texts_per_s']['pipeline']),
             'speedup, same batch': _vs(v, 'pipeline'),
             **({'sorted pipeline texts/s': round(v['texts_per_s']['pipeline_sorted']),
                 'speedup vs sorted pipeline': _vs(v, 'pipeline_sorted')} if rounds else {}),
             "crome's encoding alone": f"{v['encode_s']:.2f} s of {v['crome_s']:.2f} s",
             'max abs score diff': f"{v['max_abs_diff_untruncated']:.0e}"} for v in d['scoring_variants']]
    n = min(v.get('rounds', 1) for v in d['scoring_variants'])
    how = (f'Medians of {n} alternating rounds after an untimed warm-up; speedups are the geometric mean of the '
           "per-round ratios with a 95% interval (within this run; one that includes 1 ranks neither side). *Sorted "
           "pipeline*: the pipeline fed the texts sorted by length, as crome batches them (the like-for-like "
           'contender).' if rounds else f'_Each row is {SINGLE_SCORING}._')
    return ["Scoring alone: " + meta_line({'_file': name} | d, 'device_speed.py'), '', md(pd.DataFrame(rows)),
            '', how, '', "On the GPU crome's scoring is bound by tokenization: the tokenizers library's thread pool (its "
            'default; the benchmarks elsewhere turn it off) encodes all texts in one batched call, while the pipeline '
            'tokenizes one pair at a time.', '']


def not_gpu(d: dict) -> str | None:
    "Why a device_speed.py file does not belong under 'On a lent GPU' (a --quick check, a CPU run), else None."
    if d.get('quick'): return 'a `--quick` check of the script (its numbers mean nothing)'
    if str(d.get('device_name', '')).lower() == 'cpu': return 'measured on a CPU, not on a lent GPU'
    return None


def _packed_over_padded(files: dict) -> str:
    "Packed over padded MiniLM pairs/s per file: per round with its interval, or labelled a single run."
    parts, single = [], {}
    for n, d in files.items():
        P, Q = d['runs']['minilm_packed'], d['runs']['minilm_padded']
        if 'repeats' in P and 'repeats' in Q:
            parts.append(f"{n}: {ratio_text(round_values(P), round_values(Q))}, {len(P['repeats'])} rounds")
        else:
            single[n] = P['pairs_per_s'] / Q['pairs_per_s']
            parts.append(f'{n}: {single[n]:.2f}x (single run)')
    out = f'Packed over padded MiniLM training, pairs/s within one file: {"; ".join(parts)}.'
    if single:
        near = min(single, key=lambda n: abs(math.log(single[n])))  # the example: the ratio nearest 1
        who = 'Each' if len(single) == len(files) else ', '.join(f'`{n}`' for n in single)
        out += (f' {who} ran packed first and padded second, once each, with no untimed warm-up: single runs without a '
                'noise estimate, so how far from 1 a ratio must be to rank packed against padded is not known, and one '
                f"near 1 ranks neither ({single[near]:.2f}x in `{near}` is not 'slower').")
    return out


def _scoring_line(name: str, d: dict) -> tuple[str, bool]:
    "A training file's scoring, crome vs the pipeline(s); and whether it is a single round (no interval)."
    sc, b = d['scoring'], d['config']['batch']
    tp, diff = sc['texts_per_s'], f"max |score difference| {sc['max_abs_diff_untruncated']:.0e}"
    if 'seconds_all_rounds' not in sc:
        return (f"{name}: crome {tp['crome']:.0f} texts/s, pipeline {tp['pipeline']:.0f} at batch {b} "
                f"({sc['speedup_same_batch']:.2f}x, single round), {diff}"), True
    return (f"{name}: crome {tp['crome']:.0f} texts/s, pipeline {tp['pipeline']:.0f}, sorted pipeline "
            f"{tp['pipeline_sorted']:.0f} at batch {b}, {diff}, crome over the pipeline {_vs(sc, 'pipeline')}, over the "
            f"sorted pipeline {_vs(sc, 'pipeline_sorted')}, {sc['rounds']} rounds"), False


def device(files: dict) -> list[str]:
    """The lent-GPU files of device_speed.py (issue 17 item 6): training runs, one row per run and batch, then
    scoring; `--scoring-only` files render as their own tables; --quick checks and CPU runs are named, not shown."""
    out, train, alone = ['### On a lent GPU', ''], {}, {}
    for name, d in files.items():
        why = not_gpu(d)
        if why: out += [f'_`{name}` is not shown: it is {why}; rerun device_speed.py on a GPU, or restore the '
                        'committed file from git._', '']
        elif 'scoring_variants' in d: alone[name] = d
        elif d.get('runs') and 'scoring' in d: train[name] = d
        else: raise ValueError(f"{name}: neither a training file ('runs' and 'scoring') nor a --scoring-only file "
                               "('scoring_variants')")
    if not train: return out + sum((scoring_variants(n, d) for n, d in alone.items()), [])
    rows, score = [], []
    for name, d in train.items():
        out += [meta_line({'_file': name} | d, 'device_speed.py'), '']
        for run, r in d['runs'].items():
            rows.append({'file': name, 'run': run, 'pairs per step': r['config']['batch_size'],
                         'max length': r['config']['max_length'], 'pairs/s': round(r['pairs_per_s'], 1),
                         'non-pad tokens/s': int(round(r['nonpad_tokens_per_s'])),
                         'share of bf16 probe': f"{r['share_of_probe_peak']:.1%}",
                         'MFU (vendor bf16 peak)': f"{r['mfu_nominal']:.1%}" if r.get('mfu_nominal') else 'n/a'})
        score.append(_scoring_line(name, d))
    shares = [r['share_of_probe_peak'] for d in train.values() for r in d['runs'].values()]
    d0 = next(iter(train.values()))
    probe = ', '.join(f"{k} {v / 1e12:.0f} TFLOP/s" for k, v in d0['peak_probe_flops_per_s'].items())
    single = [n for n, (_, one) in zip(train, score) if one]
    out += [f"{d0['device_name']}, CUDA {d0['cuda']}, torch {d0['versions']['torch']}, transformers "
            f"{d0['versions']['transformers']}; matmul probe {probe}; weights: {d0.get('weights', 'not recorded')}. "
            'MiniLM fine-tuning (packed and padded forward, bf16 autocast) and a SmolLM2-135M PairPM on hh-rlhf '
            'pairs; useful FLOPs count non-pad tokens only:', '', md(pd.DataFrame(rows)), '',
            'Scoring, crome vs a transformers pipeline at the same batch and texts: ' + '; '.join(x for x, _ in score)
            + '.' + ((' Each is ' if len(single) == len(train) else f" {', '.join(f'`{n}`' for n in single)}: ")
                     + SINGLE_SCORING + '.' if single else ''), '',
            _packed_over_padded(train) + " The `_rowblocks` files ran "
            "before `packed_logits` stopped cutting the row-wise work into blocks of 1024 rows on a GPU (a CPU cache "
            'measure that there only multiplies kernel launches).', '',
            *sum((scoring_variants(n, d) for n, d in alone.items()), []),
            f'At this model size the GPU is starved, not busy: {100 * min(shares):.0f}-{100 * max(shares):.0f}% of the '
            'bf16 probe, with the host (the Trainer '
            "loop, collation, kernel launches) setting the pace. Such runs are noisy between machines, so compare rows "
            'of one file only, not across files.', '']
    return out


QUALITY_TEST_SEEDS = {0, 1, 2, 3, 4}  # quality.py's default seeds: the testbed's test pairs come from these


def not_exercised() -> tuple:
    "crome_ablation.NOT_EXERCISED, read from the script's source (importing it would import torch)."
    src = (Path(__file__).parent / 'crome_ablation.py').read_text()
    node = next((n for n in ast.parse(src).body if isinstance(n, ast.Assign)
                 and any(getattr(t, 'id', None) == 'NOT_EXERCISED' for t in n.targets)), None)
    return tuple(ast.literal_eval(node.value)) if node else ()


def ablation(a) -> list[str]:
    """Both formats of crome_ablation.json: the first (Crome's variants only, `selected` one name) and the current
    ('rrm: ...' variants train RRM, `selected` is {recipe: variant}, `vs_default` rows carry their recipe)."""
    S = pd.DataFrame(a['summary'])
    b = S[S.task == 'both']
    recipe = ['RRM' if v.startswith('rrm:') else 'Crome' for v in b.variant]
    t = pd.DataFrame({'recipe': recipe, 'variant': b.variant,
                      'clean': [ci(*x) for x in zip(b['clean'], b.clean_low, b.clean_high)],
                      'reversed': [ci(*x) for x in zip(b['reversed'], b.reversed_low, b.reversed_high)]})
    t = t.sort_values('recipe', kind='stable', key=lambda r: r.map({'Crome': 0, 'RRM': 1}))
    old = ([] if 'verdicts' in a else
           ["_This file predates crossed intervals (crome.stats): it resampled each cue kind's copy of a seed's "
            'pairs as if they were different pairs, so its intervals are too narrow, and it kept no per-pair '
            'verdicts to recompute them; rerun `crome_ablation.py`._', ''])
    rs = a.get('resummarised')
    old += [recomputed_note(rs, 'crome_ablation.py', ": a seed's cue kinds share its pairs, the two tasks are strata"),
            ''] if rs else []
    seeds = set(a['meta'].get('seeds', []))
    if seeds & QUALITY_TEST_SEEDS:
        old += [f"_This run's seeds ({', '.join(map(str, sorted(seeds)))}) include quality.py's test seeds: "
                '`make_demo` draws its pairs in order, so a smaller demo of one seed is a prefix of a larger one and '
                "these validation pairs overlap the testbed's test pairs. crome_ablation.py now uses seeds 100-104._",
                '']
    ex = a['meta'].get('excluded_test_prompts')
    if ex:
        old += ['_Validation pairs whose prompt is in one of quality.py\'s test splits were not scored: '
                + '; '.join(f"{t.replace('_', ' ')} {v['pairs']} of {v['of_pairs']} pairs ({v['prompts']} of "
                            f"{v['of_prompts']} prompts)" for t, v in ex.items()) + '._', '']
    elif 'verdicts' in a:
        old += ["_Validation here shares prompts with quality.py's test splits (demo sets of different seeds draw from "
                'one prompt space; at n=1200, seeds 100-104 shared 492 of 885 relevance validation pairs\' prompts): '
                'rerun `crome_ablation.py`, which now leaves those pairs out._', '']
    has_rrm = 'RRM' in recipe
    who = "Crome's and RRM's" if has_rrm else "Crome's"
    cues = a['meta'].get('config', {}).get('cues')
    n_cues = (len(cues.split(',')) if isinstance(cues, str) else len(cues)) if cues else 0
    cues = f"{n_cues} cue kind{'s' if n_cues != 1 else ''}" if cues else 'its cue kinds'
    out = ['### Design choices, selected on validation', '',
           meta_line(a['meta'], 'crome_ablation.py', (rs or {}).get('commit')), ''] + old + [
           f"{who} variants on the "
           f"demo's validation splits (both tasks, {cues}, pooled); each recipe's variants are compared with that "
           "recipe's default:", '', md(t if has_rrm else t.drop(columns='recipe')), '']
    variants = set(b.variant)
    skipped = [v for v in not_exercised() if v not in variants]
    ran = [v for v in not_exercised() if v in variants]
    if skipped:
        out += [f"Not run (`NOT_EXERCISED` in crome_ablation.py; `--variants` can name them): "
                f"{', '.join(repr(v) for v in skipped)}: on this testbed they made exactly the default's training rows "
                '(same kept rows, difference +0.000 in an earlier run), so they test nothing here.', '']
    if ran:
        out += [f"{', '.join(repr(v) for v in ran)} made exactly the default's training rows on this testbed "
                '(difference +0.000): they are not exercised here, and the script no longer runs them by default.', '']
    if 'vs_default' in a:
        out += [f'- {r.verdict}' for r in pd.DataFrame(a['vs_default']).itertuples()] + ['']
        sel = a['selected']
        if isinstance(sel, dict):
            name = {'crome': 'Crome', 'rrm': 'RRM'}
            dflt = {'crome': 'default', 'rrm': 'rrm: default'}
            out += ['Selected (a variant replaces its recipe\'s default only when its reversed accuracy is significantly '
                    'higher and its clean accuracy not significantly lower): '
                    + '; '.join(f"{name.get(k, k)} **{v}**" + (' (the default stays)' if v == dflt.get(k) else '')
                                for k, v in sel.items()) + '.', '']
        else:
            out += [f"Selected: **{sel}** (Crome's variants only: this run predates RRM's tuned variants).", '']
        return out
    return out + [f"This file was written by the script's first selection rule (highest point estimate: "
                  f"{a['selected']!r}). Every interval above overlaps the default's, so under the current rule (a variant "
                  'must be significantly better on paired differences) **the defaults stay** (lambda 1, tau 0.2, IQN '
                  'from original pairs, 1 per pair); rerun `crome_ablation.py` to record the paired verdicts.', '']


def main():
    p = argparse.ArgumentParser(); p.add_argument('--out', default=str(RESULTS / 'RESULTS.md'))
    p.add_argument('--ablation', default='crome_ablation.json', help='the ablation results file (a name in results/ '
                   'or a path)')
    a = p.parse_args()
    lines = ['<!-- generated by benchmarks/results_md.py from benchmarks/results/*.json: do not edit -->', '']
    q = load('quality.json')
    if q and 'testbed_summary' in q: lines += testbed(q) + odin_note(q['meta']) + rrm_note(q['meta'])
    if load('testbed_baselines.json'): lines += testbed_baselines(load('testbed_baselines.json'), q)
    if q and 'real_power' in q: lines += real(q) + rrm_note(q.get('meta_real', q['meta']))
    qn = load('quality_length_neutral.json')
    if qn and 'testbed_summary' in qn:
        lines += testbed(qn, '### Planted-cue testbed, a length-neutral cue (`exclaim`)') + odin_note(qn['meta']) + rrm_note(qn['meta'])
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
        lines += testbed(qf, '### Planted-cue testbed, fine-tuned MiniLM (a small CPU run)', exclaim_where='above')
        c = qf['meta']['config']
        lines += [f"_Reduced scope, chosen to fit 2 CPU cores: {len(c['recipes'])} recipes ({', '.join(c['recipes'])}), "
                  f"cue kind(s) {', '.join(c['cues'])}, {c['steps']} steps of {c['batch']} pairs at {c['max_length']} "
                  'tokens, the testbed only. The full fine-tuned protocol (three cue kinds, real data, more steps) is a '
                  'GPU run and has not been made; the frozen-head results above remain the complete protocol._', '']
        lines += odin_note(qf['meta']) + rrm_note(qf['meta'])
    for name, fn in ((a.ablation, ablation), ('fidelity.json', fidelity)):
        if load(name): lines += fn(load(name))
    if load('train_speed.json') or load('score_speed.json'): lines += speed(load('train_speed.json'), load('score_speed.json'))
    if load('score_speed_amd.json'): lines += other_cpu_scoring(load('score_speed_amd.json'), load('score_speed.json'))
    dev = {n: load(n) for n in ('device_speed.json', 'device_speed_b256.json', 'device_speed_b64_rowblocks.json',
                                'device_speed_b256_rowblocks.json', 'device_scoring.json')}
    dev = {n: d for n, d in dev.items() if d}
    if dev: lines += device(dev)
    if len(lines) == 2: lines.append('No results yet: run `python benchmarks/quality.py`.')
    Path(a.out).write_text('\n'.join(lines) + '\n')
    print('wrote', a.out)


if __name__ == '__main__':
    main()
