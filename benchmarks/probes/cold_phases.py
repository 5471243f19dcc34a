"""Where a cold search's time goes, phase by phase, in one new process: `python benchmarks/probes/cold_phases.py HOME`
(an index named `scale`, as `benchmarks/scale.py` writes). Compare its total with `/usr/bin/time` of the same run:
the difference is interpreter start and teardown."""
import time, sys
t0 = time.perf_counter()
import searchlm.cli  # noqa
t1 = time.perf_counter()
from pathlib import Path
from searchlm.search.searcher import Searcher
from searchlm.settings import Settings
t2 = time.perf_counter()
s = Searcher(Settings(home=Path(sys.argv[1]), name="scale"))
t3 = time.perf_counter()
kw = s.vectors.keyword
t4 = time.perf_counter()
n = len(s.vectors)
t5 = time.perf_counter()
enc = s.encoder
t6 = time.perf_counter()
q = enc.embed_query("Vitamin D deficiency and multiple sclerosis")
t7 = time.perf_counter()
hits = s.search("Vitamin D deficiency and multiple sclerosis", k=10)
t8 = time.perf_counter()
hits = s.search("Vitamin D deficiency and multiple sclerosis 2", k=10)
t9 = time.perf_counter()
print("import cli %.3f | import search %.3f | Searcher() %.3f | tantivy open %.3f | faiss load %.3f | encoder load %.3f | first embed %.3f | first search %.3f | 2nd search %.3f | total %.3f" % (t1-t0, t2-t1, t3-t2, t4-t3, t5-t4, t6-t5, t7-t6, t8-t7, t9-t8, t8-t0))
