import sys

from plano.cli.main import main

sys.exit(main())
