"""What tearing a process down costs per library: `python benchmarks/probes/exit_teardown.py numpy|faiss|onnx|tantivy|sqlite
INDEX_DIR; date +%s.%N` and subtract the time it prints (the numpy run is the baseline).

    for w in numpy faiss onnx; do out=$(python benchmarks/probes/exit_teardown.py $w DIR); end=$(date +%s.%N);
      python3 -c "print('$w', $end - float('$out'.split()[1]))"; done
"""
import sys, time, os
from pathlib import Path
what = sys.argv[1]
if what == "faiss":
    import faiss
    x = faiss.read_index(sys.argv[2] + "/vectors.faiss", faiss.IO_FLAG_MMAP_IFC)
    import numpy as np
    q = np.random.default_rng(0).normal(size=(1, 384)).astype("float32")
    x.search(q, 10, params=faiss.SearchParametersHNSW(efSearch=3072))
elif what == "onnx":
    from searchlm.embed.onnx import OnnxEmbedder
    e = OnnxEmbedder(Path(sys.argv[2]) / "encoder"); e.embed_query("hello")
elif what == "tantivy":
    import tantivy
    i = tantivy.Index.open(sys.argv[2] + "/keywords.tantivy"); s = i.searcher()
elif what == "sqlite":
    from searchlm.indexing.database import Database
    st = Database(Path(sys.argv[2]) / "index.db", existing=True); st.generation
elif what == "numpy":
    import numpy
t = time.perf_counter()
print(what, "%.3f" % time.time()); sys.stdout.flush()
