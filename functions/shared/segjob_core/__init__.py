"""Shared domain code of the segmentation job stack: contracts, keys, errors, job items."""
