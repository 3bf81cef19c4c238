"""Evaluation: retrieval quality over question sets (``retrieval``) and answer attribution
over labelled claims (``attribution``)."""
