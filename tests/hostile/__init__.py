"""Hostile input, faults and races: each test reproduces one way a CA is attacked or unlucky."""
