"""Typed, frozen models of the plate metadata document (``openhcs_metadata.json``).

Known fields are typed strictly (a string is never taken for a number);
unknown fields are kept as they are (``extra="allow"``) so that a document
read and written back loses nothing another tool put there.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    field_validator,
)

Backend = Literal["disk", "memory", "zarr"]
"""Storage backends a plate or sub-directory can be read from."""

BACKENDS: tuple[str, ...] = get_args(Backend)

BackendMap = dict[Backend, StrictBool]
ComponentMap = dict[StrictStr, StrictStr | None]
"""Component key (well, site, channel, z index) -> display name or null."""

UNKNOWN_PIXEL_SIZE = 1.0


class SubdirectoryRecord(BaseModel):
    """The metadata of one sub-directory of a plate (e.g. ``images``)."""

    model_config = ConfigDict(frozen=True, extra="allow")

    microscope_handler_name: StrictStr | None = None
    source_filename_parser_name: StrictStr | None = None
    grid_dimensions: tuple[StrictInt, StrictInt] | None = None
    pixel_size: StrictFloat = UNKNOWN_PIXEL_SIZE
    image_files: tuple[StrictStr, ...] = ()
    channels: ComponentMap | None = None
    wells: ComponentMap | None = None
    sites: ComponentMap | None = None
    z_indexes: ComponentMap | None = None
    available_backends: BackendMap | None = None
    # The format says "true or null"; newer OpenHCS writers also emit false
    # for non-main records, so false is read (and means "not main").
    main: StrictBool | None = None
    objectives: dict[StrictStr, Any] | None = None
    acquisition_datetime: StrictStr | None = None
    plate_name: StrictStr | None = None

    @field_validator("pixel_size", mode="before")
    @classmethod
    def _unknown_pixel_size(cls, value: Any) -> Any:
        """Writers store null when the pixel size is unknown; readers expect 1.0."""
        return UNKNOWN_PIXEL_SIZE if value is None else value

    @property
    def is_main(self) -> bool:
        """True when this record is flagged as the plate's main sub-directory."""
        return self.main is True


RECORD_FIELDS: frozenset[str] = frozenset(SubdirectoryRecord.model_fields)
"""Names of the known record fields (used to recognise legacy flat documents)."""


class PlateMetadata(BaseModel):
    """The whole sidecar: sub-directory records in insertion order plus plate-level facts."""

    model_config = ConfigDict(frozen=True, extra="allow")

    subdirectories: dict[StrictStr, SubdirectoryRecord]
    available_backends: BackendMap | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the document as plain JSON data, with only the fields it was read with."""
        return self.model_dump(mode="json", exclude_unset=True)
