"""searchlm's own backends, registered through the same hooks as any plugin's (searchlm/plugins.py). Targets are
'module:attr' strings, so registering imports nothing: torch, faiss and pymilvus load when a backend is used."""

from __future__ import annotations

from searchlm.hookspecs import hookimpl


@hookimpl
def register_embedders(register):
    register("sentence-transformers", "searchlm.embed.sentence_transformers:SentenceTransformerEmbedder")
    register("local", "searchlm.embed.sentence_transformers:SentenceTransformerEmbedder")
    register("ray", "searchlm.embed.ray:RayEmbedder", extra="ray")


@hookimpl
def register_stores(register):
    register("faiss", "searchlm.stores.faiss:FaissStore")
    register("milvus", "searchlm.stores.milvus:MilvusStore", extra="milvus")


@hookimpl
def register_keyword_indexes(register):
    register("fts5", "searchlm.stores.fts5:Fts5Keywords")
    register("tantivy", "searchlm.stores.tantivy:TantivyKeywords", extra="tantivy")
    register("milvus", "searchlm.stores.milvus_keywords:MilvusKeywords", extra="milvus")


@hookimpl
def register_rerankers(register):
    register("cross-encoder", "searchlm.rerank.cross_encoder:CrossEncoderReranker")
    register("lm", "searchlm.rerank.lm:LMReranker")


@hookimpl
def register_generators(register):
    register("llm", "searchlm.generate.llm_models:load_llm_generator", extra="llm")
