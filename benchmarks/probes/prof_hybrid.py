import statistics
import sys
import time

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
from pathlib import Path

from cold_search import test_queries

from searchlm.stores.query import fts_query
from searchlm.search.searcher import Searcher
from searchlm.settings import Settings

home = Path(sys.argv[1])
s = Searcher(Settings(home=home, name="scale")); s.warm()
qs = test_queries(30)
s.search(qs[0])
t = {"embed": [], "dense": [], "kw_search": [], "kw_scores": [], "hybrid": [], "nmatch": []}
for q in qs:
    f = fts_query(q)
    t0 = time.perf_counter(); v = s.encoder.embed_query(q); t["embed"].append(time.perf_counter() - t0)
    t0 = time.perf_counter(); d = s.vectors.search(v, 100, None); t["dense"].append(time.perf_counter() - t0)
    t0 = time.perf_counter(); k = s.store.keyword_search(f, 100); t["kw_search"].append(time.perf_counter() - t0)
    t0 = time.perf_counter(); sc = s.store.keyword_scores(f, list(d)); t["kw_scores"].append(time.perf_counter() - t0)
    t0 = time.perf_counter(); s.search(q, k=10); t["hybrid"].append(time.perf_counter() - t0)
    t["nmatch"].append(s.store.conn.execute("select count(*) from chunks_fts where chunks_fts match ?", [f]).fetchone()[0])
n = s.store.conn.execute("select count(*) from chunks").fetchone()[0]
print(n, {k: round(1000 * statistics.median(v), 1) if k != "nmatch" else statistics.median(v) for k, v in t.items()})
