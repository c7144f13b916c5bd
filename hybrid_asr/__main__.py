"""``python -m hybrid_asr ARGS``: the ``hybrid-asr`` command without an installed entry point
(e.g. a checkout on ``PYTHONPATH``, or ``torchrun -m hybrid_asr train ...``)."""

import sys

from hybrid_asr.cli.main import main

sys.exit(main())
