"Worker for tests/test_scaleout.py, run under `accelerate launch`: one shard of an offline augmentation per process."
import json, sys
from accelerate import PartialState
from crome.augment import causal_augment
from crome.demo import make_demo

if __name__ == '__main__':
    out = sys.argv[1]
    st = PartialState(cpu=True)
    ds = make_demo(40, cues=[], seed=3)['train']
    res = causal_augment(ds, seed=0, shard=st.process_index, num_shards=st.num_processes, progress=False)
    with open(f'{out}/shard{st.process_index}.json', 'w') as f:
        json.dump({'records': res.records, 'rejects': res.reject_records, 'shard': res.shard, 'num_shards': res.num_shards,
                   'backend': str(st.backend), 'world': st.num_processes}, f, default=str)
