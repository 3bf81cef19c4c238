"""Retrieval: a question → ranked passages of one index (``retriever``), the fusion of the
dense and lexical rankings (``fusion``), and the router that ranks over several shard
services as one index would (``router``)."""
