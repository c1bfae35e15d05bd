"""``python -m benchmarks.conformance``: see run.py."""

import sys

from benchmarks.conformance.run import main

sys.exit(main())
