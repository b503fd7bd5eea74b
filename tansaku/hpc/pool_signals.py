"""Imported (preloaded) by the forkserver of a local worker pool: it then ignores SIGTERM and SIGINT.

A batch system (SLURM, PBS, LSF) signals every process of a job at its end, and Ctrl-C signals the whole
foreground process group. The pool's parent decides how to stop (flush finished records, kill the
workers); a forkserver killed first could neither start nor account for worker processes. It still
exits when its parent does (it watches a pipe from it). Processes it forks inherit the dispositions.
"""

import signal

signal.signal(signal.SIGTERM, signal.SIG_IGN)
signal.signal(signal.SIGINT, signal.SIG_IGN)
