"""``python -m app.cli``: the same as the ``diwan`` console script."""

from . import main

if __name__ == "__main__":
    main(prog_name="diwan")
