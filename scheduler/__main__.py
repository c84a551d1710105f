"""``python -m scheduler``: run the scheduler process in the data directory."""

from .worker import main

if __name__ == "__main__":
    main()
