"""Attribution: the CC BY-SA credit of a passage (``license``), citation records for a
Wikipedia URL or revision (``citations``), and the verifier that tells which sentences of an
answer the index supports (``verifier``)."""
