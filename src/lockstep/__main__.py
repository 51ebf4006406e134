"""``python -m lockstep``: the command line."""

if __name__ == "__main__":
    from lockstep.cli import main

    main()
