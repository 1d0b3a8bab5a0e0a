"""The plate metadata sidecar (``openhcs_metadata.json``): models, writer, reader, migration."""

from ih5.errors import (
    MetadataNotFoundError,
    MetadataValidationError,
    MetadataWriteError,
    MigrationError,
)
from ih5.metadata._location import METADATA_FILENAME, get_metadata_path
from ih5.metadata._migration import (
    MigrationResult,
    data_directory,
    migrate_legacy_metadata,
    plan_migration,
)
from ih5.metadata._model import BACKENDS, Backend, PlateMetadata, SubdirectoryRecord
from ih5.metadata._validation import detect_legacy
from ih5.metadata._view import (
    load_plate_metadata,
    main_subdirectory,
    plate_view,
    read_plate_document,
)
from ih5.metadata._writer import AtomicMetadataWriter, MetadataUpdateRequest

__all__ = [
    "BACKENDS",
    "METADATA_FILENAME",
    "AtomicMetadataWriter",
    "Backend",
    "MetadataNotFoundError",
    "MetadataUpdateRequest",
    "MetadataValidationError",
    "MetadataWriteError",
    "MigrationError",
    "MigrationResult",
    "PlateMetadata",
    "SubdirectoryRecord",
    "data_directory",
    "detect_legacy",
    "get_metadata_path",
    "load_plate_metadata",
    "main_subdirectory",
    "migrate_legacy_metadata",
    "plan_migration",
    "plate_view",
    "read_plate_document",
]
