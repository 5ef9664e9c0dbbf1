"""``python -m payfallback``: the command line."""

from payfallback.cli import main

if __name__ == "__main__":
    main()
