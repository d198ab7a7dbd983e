"""Raw and output locations on an object store (``s3://bucket/prefix``).

An object store has no rename, no symlink and no lock file, so the pipeline does not run on
it directly. It works on a local copy and keeps its guarantees with what S3 does give: one
object written by one PUT appears whole, reads after a write see it (strong consistency), and
a write or delete can be made conditional on the object's ETag (``If-Match``) or absence
(``If-None-Match: *``).

- **Raw** (:mod:`.mirror`): the objects under the URL are mirrored incrementally into a local
  folder at the start of the corpus step (changed objects downloaded, vanished ones removed),
  and the run reads that folder; the sensor fingerprints the listing without downloading.
- **Output** (:mod:`.tables`): the run writes its snapshot in a local working dir as for a
  local output dir, uploads it under ``<url>/_snapshots/<name>/`` and publishes it by one
  conditional PUT of the pointer object ``<url>/_current``, which readers resolve.
- **Lock** (:mod:`.lease`): the object ``<url>/.docthemes.lock``, created only if absent and
  renewed while the run lasts, so runs on different machines never write at once.

docs/deploy.md#object-stores says what the store must provide and how to read the tables.
"""
