"""``mlpipe watch ftp``: new files on an FTP(S) drop -> NGAS -> the inference pipeline.

Layers: :mod:`listing` (MLSD/LIST parsing), :mod:`ftp` (the connection,
resumable downloads), :mod:`state` (the sqlite state per watcher),
:mod:`submit` (the pipeline started with the file as its input) and
:mod:`watcher` (the poll and the per-file state machine; docs/watch.md).
"""
