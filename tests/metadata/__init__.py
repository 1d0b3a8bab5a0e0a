"""Tests of the metadata floor: the plate metadata sidecar."""
