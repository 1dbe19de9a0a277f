"""One module per phase of a generation, in the order `Ecology.step` calls them:

tickets -> foraging -> learning -> guard -> reproduction -> assimilation -> evaluation.

Each phase is a function of the running `Ecology` (loop.py), which holds the colony's state; the
pure rules a phase applies live beside it (energy.py, market.py, diversity.py, assimilation.py,
evaluation.py, genes.py, learning/).
"""
