"""The distributed build: the local pipeline cut into work units that a cluster runs.

* :mod:`indexer.distributed.units` splits the sources into work units (multistream offsets,
  archive members, line ranges, whole files) and reads one unit alone.
* :mod:`indexer.distributed.shards` runs one unit (parse, clean, chunk; then embed) into a
  shard of files, and merges the shards on the driver into the same store, dense index and
  lexical index that the local build writes.
* :mod:`indexer.distributed.ray_build` runs all that on Ray (``wikirag build --engine ray``);
  it is the only module that imports ``ray`` (the optional extra ``wikirag[ray]``).

Nothing here imports ``ray`` at import time except :mod:`~indexer.distributed.ray_build`.
"""
