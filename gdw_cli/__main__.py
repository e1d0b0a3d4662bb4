"""`python -m gdw_cli ...`: the same as the `gdw` console script."""

from gdw_cli.main import main

main()
