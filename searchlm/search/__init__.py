"""Search: where a query goes once it reaches `searchlm.Index.search` / `Searcher.search`.

    searcher.py    `Searcher`: options, spelling, keyword and dense candidates from the store (searchlm/stores/),
                   fusion, rerank (searchlm/rerank/), hits; `SearchResources`: the loaded parts searchers share
    spelling.py    a query word the index has never seen, corrected from the index's own vocabulary
    filters.py     --path/--exclude/--type/--since/--kind, applied by the store before its top-k cut
    fusion.py      the keyword and dense lists fused into one ranking
    snippets.py    each hit's excerpt, with the query's words marked
    documents.py   a stored document rebuilt from its chunks
    answer.py      `ask`: a cited answer from the hits (questions.py: what a question asks for;
                   searchlm/generate/: the answer model)
    summarize.py   a document's summary
"""
