"""Adapters to training and evaluation frameworks (each needs its optional extra)."""
