"""Attributes of an overlay object, read from whichever container holds each value."""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any

import numpy as np

from ih5.errors import NodeNotFoundError
from ih5.record._chain import Chain
from ih5.record._opening import payload_errors


class IH5AttributeManager(MutableMapping[str, Any]):
    """The h5py-like attribute mapping of one group or dataset of a record."""

    def __init__(self, chain: Chain, path: str) -> None:
        self._chain = chain
        self._path = path

    def _sources(self) -> dict[str, int]:
        return self._chain.resolve(self._path).attrs

    def __getitem__(self, name: str) -> Any:
        index = self._sources().get(name)
        if index is None:
            raise NodeNotFoundError(f"no attribute {name!r} at {self._path!r}", self._path)
        file = self._chain.data_file(index, self._path)
        with payload_errors(file):
            return file[self._path].attrs[name]

    def __setitem__(self, name: str, value: Any) -> None:
        self._chain.require_writer().set_attr(self._path, name, value)

    def __delitem__(self, name: str) -> None:
        self._chain.require_writer().delete_attr(self._path, name)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._sources()))

    def __len__(self) -> int:
        return len(self._sources())

    def __contains__(self, name: object) -> bool:
        return name in self._sources()

    def create(
        self, name: str, data: Any, shape: tuple[int, ...] | None = None, dtype: Any = None
    ) -> None:
        """Set ``name`` to ``data`` converted to ``dtype`` and ``shape`` (h5py's ``create``)."""
        value = np.asarray(data, dtype=dtype)
        self[name] = value.reshape(shape) if shape is not None else value

    def modify(self, name: str, value: Any) -> None:
        """Set ``name`` to ``value``, creating it if needed (h5py's ``modify``)."""
        self[name] = value

    def __repr__(self) -> str:
        return f"<IH5 attributes of {self._path!r} ({len(self)} members)>"
