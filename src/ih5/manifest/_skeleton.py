"""The skeleton of a record: every path with its node type and where its state comes from."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, RootModel

from ih5.manifest._layout import LAYOUT_KEY, Describe, layout_of
from ih5.record import IH5Record, Node, walk


class SkeletonEntry(BaseModel):
    """One path of a skeleton (FORMAT.md section 5).

    ``patch_index`` is the container that created or last substituted the
    node (for a dataset: where its data lives); ``attrs`` maps each attribute
    to the container holding its value. Extra keys are allowed and kept.
    """

    model_config = ConfigDict(frozen=True, extra="allow")

    node_type: Literal["group", "dataset"]
    patch_index: int
    attrs: dict[str, int]

    def with_patch_index(self, index: int) -> SkeletonEntry:
        """A copy whose node and attributes all come from patch ``index``."""
        return self.model_copy(
            update={"patch_index": index, "attrs": dict.fromkeys(self.attrs, index)}
        )


class IH5Skeleton(RootModel[dict[str, SkeletonEntry]]):
    """Absolute path -> entry, root first, then depth-first in sorted order."""

    def __iter__(self) -> Iterator[str]:  # type: ignore[override]
        return iter(self.root)

    def __getitem__(self, path: str) -> SkeletonEntry:
        return self.root[path]

    def __len__(self) -> int:
        return len(self.root)

    @classmethod
    def from_tree(cls, root: Node, describe: Describe | None = None) -> IH5Skeleton:
        """Build the skeleton of a resolved tree: cost proportional to the number of nodes.

        ``describe`` adds the layout of chunked datasets (``LAYOUT_KEY``).
        """
        entries: dict[str, SkeletonEntry] = {}
        for path, node in walk(root):
            extra: dict[str, Any] = {}
            if describe is not None and not node.is_group:
                layout = describe(path, node)
                if layout is not None:
                    extra[LAYOUT_KEY] = layout
            entries[path] = SkeletonEntry(
                node_type="group" if node.is_group else "dataset",
                patch_index=node.created,
                attrs=dict(sorted(node.attrs.items())),
                **extra,
            )
        return cls(entries)

    def layout(self, path: str) -> dict[str, Any] | None:
        """The layout of the chunked dataset at ``path`` (None if the manifest has none)."""
        extra = self.root[path].model_extra or {}
        layout = extra.get(LAYOUT_KEY)
        return layout if isinstance(layout, dict) else None

    @classmethod
    def for_record(cls, record: IH5Record) -> IH5Skeleton:
        """The skeleton of a record's current state (its open patch included)."""
        return cls.from_tree(record.chain.root, lambda path, node: layout_of(record, path, node))

    def with_patch_index(self, index: int) -> IH5Skeleton:
        """A copy with every node and attribute index set to ``index``."""
        return type(self)(
            {path: entry.with_patch_index(index) for path, entry in self.root.items()}
        )

    def to_json_data(self) -> dict[str, Any]:
        """Plain JSON data in the manifest's key order."""
        return {path: entry.model_dump(mode="json") for path, entry in self.root.items()}
