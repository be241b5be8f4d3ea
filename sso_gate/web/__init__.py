"""Starlette glue: the only layer that imports Starlette."""
