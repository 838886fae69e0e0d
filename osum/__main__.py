import sys

from osum.cli.main import main

sys.exit(main())
