"""``python -m pgpt.bench.cuda``: see the package's docstring."""

import sys

from pgpt.bench.cuda import main

sys.exit(main())
