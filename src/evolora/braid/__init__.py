"""Braid: fuse several language models inside their layers, and a MetaBraider that learns how.

Heavy modules (torch, transformers) load when a submodule is imported:
`evolora.braid.pool`, `braided`, `generation`, `fusion_train`, `braider`, `trainer`.
"""
