"""Helpers every floor's tests share: typed node access, kill points, directory snapshots."""
