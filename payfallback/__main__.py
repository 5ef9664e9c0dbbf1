"""``python -m payfallback``: the command line."""

from payfallback._demo import main

raise SystemExit(main())
