"""Process-level settings of a serving worker (gunicorn calls these; see
``gunicorn.conf.py``).

Nothing here runs in tests or in ``flask`` commands: it changes the whole
interpreter, which only a dedicated server process should do.
"""

from __future__ import annotations

import gc

#: The collector's thresholds in a serving worker: CPython's first two, and a
#: full collection considered only after 100 (not 10) collections of the middle
#: generation.
GC_THRESHOLDS = (700, 10, 100)


def tune_garbage_collector() -> None:
    """Make full garbage collections rare and short in a long-running server.

    A full collection holds the GIL while it walks every tracked object; with the
    app loaded that was ~220,000 objects and 100-400 ms, several times a minute
    under chat load, and every WebSocket of the process waited (BENCHMARKS.md,
    "Real-time chat"). So, once the app is loaded:

    - ``gc.freeze()`` moves everything alive now (modules, classes, the app, its
      mapped models: objects that live as long as the process) out of the
      collector's sight, so full collections walk only what came later;
    - full collections are considered ten times less often (``GC_THRESHOLDS``).
      Objects that outlive a few young collections because a request or event was
      still using them otherwise count towards the next full collection, and with
      hundreds of threads in flight that triggered one every few seconds.

    Young collections are unchanged, so cyclic garbage is still found; reference
    counting frees the rest as before.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
