"""`python -m crome`: the crome command."""

__all__ = []

# %% ../nbs/13_cli.ipynb #3923f6c9
import sys
from .cli import main

if __name__ == '__main__' and '__file__' in globals(): sys.exit(main())  # not when this notebook runs

# %% ../nbs/13_cli.ipynb #3923f6c9
import sys
from .cli import main

if __name__ == '__main__' and '__file__' in globals(): sys.exit(main())  # not when this notebook runs

# %% ../nbs/13_cli.ipynb #3923f6c9
import sys
from .cli import main

if __name__ == '__main__' and '__file__' in globals(): sys.exit(main())  # not when this notebook runs

# %% ../nbs/13_cli.ipynb #3923f6c9
import sys
from .cli import main

if __name__ == '__main__' and '__file__' in globals(): sys.exit(main())  # not when this notebook runs