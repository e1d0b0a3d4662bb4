"""Figures for papers and group meetings from runs and sweeps (`gdw plot`; the `plot` extra, matplotlib).

data: what is drawn, read from the runs' files (torch- and matplotlib-free); style: colours, widths,
fonts; kinds: one function per figure; output: the files and their sidecar CSVs, written whole or not at all.
"""
