"""Example extraction schemas (Pydantic models) used by the pipelines in ../pipelines."""
