import sys

from labelwise_labelstudio.cli import main

sys.exit(main())
