"""`python -m coinwire.cli`: the same as the `coinwire` script."""

from coinwire.cli import main

main()
