"""`python -m recorder.cli`: the same as the `cprec` script."""

from recorder.cli import main

main()
